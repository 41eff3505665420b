// Test-only: loads a captured /proc fixture from src/proc/testdata (see testdata/capture.py).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "base/io.h"

namespace cryo::proc {

inline std::string Fixture(const std::string& name) {
  auto text = ReadWholeFile(std::string(CRYO_PROC_TESTDATA) + "/" + name);
  EXPECT_TRUE(text) << text.error().Message();
  return text ? *text : std::string();
}

}  // namespace cryo::proc
