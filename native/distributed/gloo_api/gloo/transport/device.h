// Declarations for ProcessGroupGloo.hpp; see ../README.md.
#pragma once

namespace gloo::transport {
// A network device (TCP on an address); created by ProcessGroupGloo::createDeviceFor*.
class Device;
// A buffer registered with a device; used by libtorch's send/recv work only.
class UnboundBuffer;
}  // namespace gloo::transport
