# OpenSSL 3 (Debian: libssl-dev) for TLS links: vox_transport links OpenSSL::SSL privately,
# and a static library passes that on to whoever links it.
if(NOT TARGET OpenSSL::SSL)
  find_package(OpenSSL 3 REQUIRED)
endif()
