// The server's heap on transparent huge pages.
#pragma once

namespace smtpfault::app {

// glibc reads its malloc tunables once, before main, so asking for huge pages
// (glibc.malloc.hugetlb=1) means starting the program again with them set: execv of the same
// binary with the same arguments and PID. A tunable the user already set for hugetlb wins;
// their other tunables are kept. Returns only if nothing had to change or exec failed.
//
// Why: under load, page-table walks for the heap (thousands of retained messages, one per
// session of everything else) cost a quarter of the server's CPU on 4 KiB pages (bench/RESULTS.md).
void restart_with_huge_page_heap(char** argv);

}  // namespace smtpfault::app
