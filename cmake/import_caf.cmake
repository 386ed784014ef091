# CAF 0.17.6 from Debian ships no CMake config: import CAF::core and CAF::io by hand.
# Used by the build and by the installed vox_caf package config.
find_package(Threads REQUIRED)
if(NOT TARGET CAF::core)
  # VOX_CAF_PREFIX: a CAF installed elsewhere (scripts/tsan.sh builds one with TSan).
  set(VOX_CAF_PREFIX "" CACHE PATH "Prefix of a CAF 0.17 to use instead of the system's")
  if(VOX_CAF_PREFIX)
    set(vox_caf_hints NO_DEFAULT_PATH PATHS "${VOX_CAF_PREFIX}")
  endif()
  find_path(CAF_INCLUDE_DIR caf/all.hpp PATH_SUFFIXES include ${vox_caf_hints} REQUIRED)
  find_library(CAF_CORE_LIBRARY caf_core PATH_SUFFIXES lib lib64 ${vox_caf_hints} REQUIRED)
  find_library(CAF_IO_LIBRARY caf_io PATH_SUFFIXES lib lib64 ${vox_caf_hints} REQUIRED)
  add_library(CAF::core UNKNOWN IMPORTED)
  set_target_properties(CAF::core PROPERTIES IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES Threads::Threads)
  add_library(CAF::io UNKNOWN IMPORTED)
  set_target_properties(CAF::io PROPERTIES IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
    INTERFACE_LINK_LIBRARIES CAF::core)
endif()
