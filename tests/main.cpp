// Catch2 entry point for the vox-caf test suite.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
