// Declarations for ProcessGroupGloo.hpp; see README.md beside this file.
#pragma once
