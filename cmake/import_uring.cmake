# liburing (Debian: liburing-dev) as the imported target PkgConfig::VOX_URING, for the
# build and for projects that find_package(vox_caf): the I/O loops wait with io_uring
# where the kernel offers it (transport/io_uring_poller.hpp), with epoll elsewhere.
if(NOT TARGET PkgConfig::VOX_URING)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(VOX_URING REQUIRED IMPORTED_TARGET GLOBAL liburing)
endif()
