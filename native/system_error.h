// A failed system or kernel call: errno plus what we were doing, and the kernel's own
// extended-ack message when netlink sent one. TypeScript turns it into an IpvsError.
#pragma once

#include <stdexcept>
#include <string>

namespace ipvs {

class SystemError : public std::runtime_error {
 public:
  SystemError(int err, std::string operation, std::string kernel_message = "", std::string path = "")
      : std::runtime_error(operation), errno_(err), operation_(std::move(operation)),
        kernel_message_(std::move(kernel_message)), path_(std::move(path)) {}

  int error_number() const { return errno_; }
  const std::string& operation() const { return operation_; }
  const std::string& kernel_message() const { return kernel_message_; }
  const std::string& path() const { return path_; }

 private:
  int errno_;
  std::string operation_;
  std::string kernel_message_;
  std::string path_;
};

}  // namespace ipvs
