# Cross-compiles herd for 64-bit ARM Linux with Debian's gcc-aarch64-linux-gnu
# and runs what it builds (the tests, through CTest) under qemu-user, which
# CMake prefixes to every test command through CMAKE_CROSSCOMPILING_EMULATOR;
# binfmt_misc is not needed. `make test-cross` uses it:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(HERD_CROSS_TRIPLE aarch64-linux-gnu)
set(HERD_CROSS_SYSROOT /usr/${HERD_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${HERD_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${HERD_CROSS_TRIPLE}-gcc)

# Find libraries and headers only in the target's tree, programs on the host.
set(CMAKE_FIND_ROOT_PATH ${HERD_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L: where qemu finds the target's dynamic loader and libc.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${HERD_CROSS_SYSROOT})
