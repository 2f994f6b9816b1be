# Turns a file into a C array (a NUL-terminated string), so that the page
# of the timeline (tracepage.html) is built into the programs that write
# it: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(from "${IN}" NAME)
file(WRITE "${OUT}" "/* Made from ${from} by embed.cmake: do not edit. */\n"
  "const char ${NAME}[] = {\n${bytes}0};\n")
