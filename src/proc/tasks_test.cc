#include "proc/tasks.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "base/unique_fd.h"

namespace cryo::proc {
namespace {

bool Contains(const auto& v, auto x) { return std::find(v.begin(), v.end(), x) != v.end(); }

TEST(Tasks, ListsEveryThreadOfOwnProcessInOrder) {
  std::promise<pid_t> tid;
  std::promise<void> done;
  std::thread t([&] {
    tid.set_value(gettid());
    done.get_future().wait();
  });
  pid_t other = tid.get_future().get();
  auto tasks = ListTasks(getpid());
  done.set_value();
  t.join();
  ASSERT_TRUE(tasks) << tasks.error().Message();
  EXPECT_TRUE(Contains(*tasks, getpid()));
  EXPECT_TRUE(Contains(*tasks, other));
  EXPECT_TRUE(std::is_sorted(tasks->begin(), tasks->end()));
}

TEST(Tasks, ListsOwnFdsWithoutTheDirectoryFd) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  auto listed = ListFds(getpid());
  ASSERT_TRUE(listed) << listed.error().Message();
  EXPECT_TRUE(Contains(*listed, r.get()));
  EXPECT_TRUE(Contains(*listed, w.get()));
  EXPECT_TRUE(std::is_sorted(listed->begin(), listed->end()));
  // Independent check: exactly the fds that fcntl knows about are listed.
  std::vector<int> open_fds;
  for (int fd = 0; fd < 1024; ++fd) {
    if (fcntl(fd, F_GETFD) >= 0) open_fds.push_back(fd);
  }
  EXPECT_EQ(*listed, open_fds);
}

TEST(Tasks, GoneProcessIsReportedAsTraceeGone) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  auto tasks = ListTasks(child);
  ASSERT_FALSE(tasks);
  EXPECT_EQ(tasks.error().kind(), ErrorKind::kTraceeGone);
  auto fds = ListFds(child);
  ASSERT_FALSE(fds);
  EXPECT_EQ(fds.error().kind(), ErrorKind::kTraceeGone);
  auto link = ReadLink("/proc/" + std::to_string(child) + "/exe");
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().kind(), ErrorKind::kTraceeGone);
}

TEST(Tasks, ReadLinkShowsPipeInodeOfAnFd) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  struct stat sb {};
  ASSERT_EQ(fstat(r.get(), &sb), 0);
  auto link = ReadLink("/proc/self/fd/" + std::to_string(r.get()));
  ASSERT_TRUE(link) << link.error().Message();
  EXPECT_EQ(*link, "pipe:[" + std::to_string(sb.st_ino) + "]");
}

TEST(Tasks, ReadLinkReturnsTargetsLongerThanItsFirstBuffer) {
  char dir[] = "/tmp/cryo-readlink-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string link_path = std::string(dir) + "/l";
  std::string target(3000, 'a');
  target += "/end";
  ASSERT_EQ(symlink(target.c_str(), link_path.c_str()), 0);
  auto link = ReadLink(link_path);
  unlink(link_path.c_str());
  rmdir(dir);
  ASSERT_TRUE(link) << link.error().Message();
  EXPECT_EQ(*link, target);
}

TEST(Tasks, ReadLinkOfMissingFileOutsideProcIsSysError) {
  auto link = ReadLink("/nonexistent-cryo-path");
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().kind(), ErrorKind::kSys);
  EXPECT_EQ(link.error().sys_errno(), ENOENT);
}

}  // namespace
}  // namespace cryo::proc
