#pragma once

#include <cstddef>

namespace ipvs {

// Memory of its own for one owner, mapped and unmapped, not taken from malloc. Two reasons: a
// large buffer that malloc had mapped raises its mmap threshold for the whole process on free
// (glibc's dynamic threshold), after which every arena may keep twice as much freed memory;
// and a buffer that lives longer than one call on a thread-pool thread would sit in that
// thread's arena, where what is allocated around it cannot be given back.
class MappedBuffer {
 public:
  MappedBuffer() = default;
  // Empty (false) when the mapping fails; pages are zero and take memory only once written.
  static MappedBuffer Map(size_t size);
  ~MappedBuffer();
  MappedBuffer(MappedBuffer&& other) noexcept;
  MappedBuffer& operator=(MappedBuffer&& other) noexcept;
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;

  explicit operator bool() const { return data_ != nullptr; }
  char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ipvs
