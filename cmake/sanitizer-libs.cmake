# Sanitizer builds of the library for the user's own programs
# (docs/debugging.md): libherd-asan (ASan+UBSan) and libherd-tsan (TSan),
# shared and static, built from HERD_SOURCES beside the plain library and
# installed next to it with pkg-config files herd-asan.pc and herd-tsan.pc
# and CMake targets herd::herd_asan and herd::herd_tsan, whose flags build
# the program with the same sanitizer. A sanitizer needs to be told where
# herd's tasks switch stacks: the sources do so (src/core/sched.c) when
# compiled with -fsanitize=..., which defines HERD_ASAN or HERD_TSAN
# (src/base/base.h), as in herd's own sanitizer builds.
#
# Included by the top CMakeLists.txt after HERD_SOURCES is set. Sets
# HERD_SAN_LIB_KINDS (the kinds built: asan, tsan) and, for each kind not
# built, HERD_SAN_LIB_SKIP_<kind> (why not, for the tests).

set(herd_san_flags_asan -fsanitize=address,undefined -fno-omit-frame-pointer)
set(herd_san_flags_tsan -fsanitize=thread)
set(herd_san_what_asan "AddressSanitizer and UndefinedBehaviorSanitizer")
set(herd_san_what_tsan "ThreadSanitizer")

# A compiler may accept the flags and still make programs that cannot run
# (musl-gcc links glibc's sanitizer runtimes), so the check runs a program;
# cross builds (which cannot run one here) and sanitizer build trees (whose
# every file already has its own -fsanitize=) do without by default.
set(herd_san_default OFF)
if(HERD_SANITIZE)
  set(herd_san_why "the library itself is a sanitizer build (HERD_SANITIZE=${HERD_SANITIZE})")
elseif(CMAKE_CROSSCOMPILING)
  set(herd_san_why "a cross build: the compiler's sanitizer programs cannot be checked here")
else()
  include(CheckCSourceRuns)
  foreach(kind asan tsan)
    set(CMAKE_REQUIRED_FLAGS "${herd_san_flags_${kind}}")
    string(REPLACE ";" " " CMAKE_REQUIRED_FLAGS "${CMAKE_REQUIRED_FLAGS}")
    set(CMAKE_REQUIRED_LINK_OPTIONS ${herd_san_flags_${kind}})
    set(CMAKE_REQUIRED_QUIET ON)
    check_c_source_runs("int main(void) { return 0; }" HERD_CC_RUNS_${kind})
    unset(CMAKE_REQUIRED_FLAGS)
    unset(CMAKE_REQUIRED_LINK_OPTIONS)
    unset(CMAKE_REQUIRED_QUIET)
    if(HERD_CC_RUNS_${kind})
      set(herd_san_default ON)
    endif()
  endforeach()
endif()
option(HERD_INSTALL_SANITIZER_LIBS
  "Build and install libherd-asan and libherd-tsan for checking programs that use herd"
  ${herd_san_default})

set(HERD_SAN_LIB_KINDS "")
foreach(kind asan tsan)
  if(NOT HERD_INSTALL_SANITIZER_LIBS)
    set(HERD_SAN_LIB_SKIP_${kind} "HERD_INSTALL_SANITIZER_LIBS is OFF")
  endif()
  if(herd_san_why)
    set(HERD_SAN_LIB_SKIP_${kind} "${herd_san_why}")
  elseif(NOT HERD_CC_RUNS_${kind})
    set(HERD_SAN_LIB_SKIP_${kind}
      "${CMAKE_C_COMPILER} cannot make a program with ${herd_san_flags_${kind}} that runs")
  endif()
  if(HERD_SAN_LIB_SKIP_${kind})
    if(HERD_INSTALL_SANITIZER_LIBS)
      message(STATUS "herd: libherd-${kind} is not built: ${HERD_SAN_LIB_SKIP_${kind}}")
    endif()
    continue()
  endif()
  list(APPEND HERD_SAN_LIB_KINDS ${kind})

  add_library(herd_${kind}_objects OBJECT ${HERD_SOURCES})
  target_include_directories(herd_${kind}_objects
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_definitions(herd_${kind}_objects PRIVATE _GNU_SOURCE)
  # -O1 -g after the build type's flags: readable reports at a fair speed.
  target_compile_options(herd_${kind}_objects PRIVATE ${herd_san_flags_${kind}} -O1 -g)

  add_library(herd_${kind}_static STATIC $<TARGET_OBJECTS:herd_${kind}_objects>)
  add_library(herd_${kind}_shared SHARED $<TARGET_OBJECTS:herd_${kind}_objects>)
  foreach(t herd_${kind}_static herd_${kind}_shared)
    target_include_directories(${t} INTERFACE
      $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
      $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
    target_link_libraries(${t} PUBLIC Threads::Threads)
    # A program that links it is compiled and linked with the sanitizer.
    target_compile_options(${t} INTERFACE ${herd_san_flags_${kind}})
    target_link_options(${t} INTERFACE ${herd_san_flags_${kind}})
    set_target_properties(${t} PROPERTIES OUTPUT_NAME herd-${kind})
  endforeach()
  # Not --no-undefined: clang leaves the runtime to the program.
  target_link_options(herd_${kind}_shared PRIVATE ${herd_san_flags_${kind}} -Wl,-z,noexecstack)
  set_target_properties(herd_${kind}_shared PROPERTIES EXPORT_NAME herd_${kind}
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
  set_target_properties(herd_${kind}_static PROPERTIES EXPORT_NAME herd_${kind}_static)
  add_library(herd::herd_${kind} ALIAS herd_${kind}_shared)
  add_library(herd::herd_${kind}_static ALIAS herd_${kind}_static)
  install(TARGETS herd_${kind}_static herd_${kind}_shared EXPORT herdTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

  set(HERD_PC_NAME herd-${kind})
  set(HERD_PC_WHAT "${herd_san_what_${kind}}")
  string(REPLACE ";" " " HERD_PC_FLAGS "${herd_san_flags_${kind}}")
  set(HERD_PC_CC "${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER_VERSION}")
  configure_file(cmake/herd-san.pc.in ${CMAKE_CURRENT_BINARY_DIR}/herd-${kind}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/herd-${kind}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
