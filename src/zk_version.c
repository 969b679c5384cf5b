/*  zkit.c — library-wide bits.  */

#include "zk_classes.h"

const char *
zk_version (void)
{
    return ZKIT_BUILD_VERSION;
}
