module herdbench

go 1.19
