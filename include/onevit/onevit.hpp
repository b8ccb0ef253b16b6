// The onevit C++ API: #include <onevit/onevit.hpp>, link onevit::onevit.
#pragma once

#include "onevit/error.hpp"
#include "onevit/image.hpp"
#include "onevit/model.hpp"
#include "onevit/model_info.hpp"
#include "onevit/rollout.hpp"
