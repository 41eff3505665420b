// WriterFirstLock: a reader-writer lock (usable with std::unique_lock and std::shared_lock) that
// lets a waiting writer in before new readers.
#pragma once

#include <pthread.h>

namespace cryo {

// glibc's default rwlock prefers readers: readers taking turns (the lazy-pages daemon's fill
// threads) would keep a writer (its main thread) out for as long as they keep coming.
class WriterFirstLock {
 public:
  WriterFirstLock() {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&l_, &a);
    pthread_rwlockattr_destroy(&a);
  }
  ~WriterFirstLock() { pthread_rwlock_destroy(&l_); }
  WriterFirstLock(const WriterFirstLock&) = delete;
  WriterFirstLock& operator=(const WriterFirstLock&) = delete;
  void lock() { pthread_rwlock_wrlock(&l_); }
  void unlock() { pthread_rwlock_unlock(&l_); }
  void lock_shared() { pthread_rwlock_rdlock(&l_); }
  void unlock_shared() { pthread_rwlock_unlock(&l_); }

 private:
  pthread_rwlock_t l_;
};

}  // namespace cryo
