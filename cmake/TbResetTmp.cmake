# ctest fixture "tmpdirs_reset": recreate each test's scratch directory, empty.
# Usage: cmake -DTB_TMPDIRS_FILE=<build>/tests/tmpdirs.txt -P TbResetTmp.cmake
if(NOT TB_TMPDIRS_FILE OR NOT EXISTS "${TB_TMPDIRS_FILE}")
  message(FATAL_ERROR "TB_TMPDIRS_FILE not set or missing: '${TB_TMPDIRS_FILE}'")
endif()
file(STRINGS "${TB_TMPDIRS_FILE}" _dirs)
foreach(d IN LISTS _dirs)
  if(d)
    file(REMOVE_RECURSE "${d}")
    file(MAKE_DIRECTORY "${d}")
  endif()
endforeach()
