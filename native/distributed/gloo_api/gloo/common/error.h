// Declarations for ProcessGroupGloo.hpp; see ../README.md.
#pragma once
