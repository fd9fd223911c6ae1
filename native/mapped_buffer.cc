#include "mapped_buffer.h"

#include <sys/mman.h>

#include <utility>

namespace ipvs {

MappedBuffer MappedBuffer::Map(size_t size) {
  MappedBuffer buffer;
  void* data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) return buffer;
  buffer.data_ = static_cast<char*>(data);
  buffer.size_ = size;
  return buffer;
}

MappedBuffer::~MappedBuffer() {
  if (data_) ::munmap(data_, size_);
}

MappedBuffer::MappedBuffer(MappedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedBuffer& MappedBuffer::operator=(MappedBuffer&& other) noexcept {
  if (this != &other) {
    if (data_) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

}  // namespace ipvs
