// OpenBLAS's CBLAS interface plus its runtime controls (thread count, detected core).
// The include path comes from pkg-config `openblas` (Debian: libopenblas-dev).
#include <cblas.h>
