// zlib (Debian: zlib1g-dev): gzip and raw-deflate decompression for the importers, and CRC-32 for zip entries.
#include <zlib.h>
