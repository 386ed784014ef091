# zstd (Debian: libzstd-dev) as the imported target PkgConfig::VOX_ZSTD, for the build and
# for projects that find_package(vox_caf): vox_transport links it privately, and a static
# library passes that on to whoever links it.
if(NOT TARGET PkgConfig::VOX_ZSTD)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(VOX_ZSTD REQUIRED IMPORTED_TARGET GLOBAL libzstd)
endif()
