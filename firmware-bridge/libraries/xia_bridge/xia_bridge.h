// Arduino library entry point.
#include "bridge.h"
