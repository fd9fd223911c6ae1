// A thread for short, allocation-free work (entering a namespace to create one descriptor,
// reading a file ahead of its parser). glibc binds every thread that calls malloc or free to
// one of its arenas (up to 8 per core) and keeps what is freed there for later reuse, so
// threads started over and over that allocate spread memory across arenas that it is never
// given back from. std::thread frees its start state on the new thread, which is enough to bind
// it; this one is started with pthread_create and given its work by pointer, so a thread whose
// work does not allocate touches no arena at all.
#pragma once

#include <pthread.h>

namespace ipvs {

class BareThread {
 public:
  BareThread() = default;
  ~BareThread() { Join(); }
  BareThread(const BareThread&) = delete;
  BareThread& operator=(const BareThread&) = delete;

  // Runs work() on a new thread; `work` must stay alive until Join(). Returns 0, or
  // pthread_create's error number (nothing started).
  template <typename Work>
  int Start(Work& work) {
    return Launch(&Call<Work>, &work);
  }

  // Waits for the thread to end; does nothing when none was started.
  void Join() {
    if (!started_) return;
    ::pthread_join(thread_, nullptr);
    started_ = false;
  }

 private:
  template <typename Work>
  static void* Call(void* work) {
    (*static_cast<Work*>(work))();
    return nullptr;
  }
  int Launch(void* (*entry)(void*), void* argument) {
    const int error = ::pthread_create(&thread_, nullptr, entry, argument);
    started_ = error == 0;
    return error;
  }

  pthread_t thread_{};
  bool started_ = false;
};

}  // namespace ipvs
