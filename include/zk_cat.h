/*  zk_cat — placeholder; the zkit-cat helper designs this class.  */
#ifndef ZK_CAT_H_INCLUDED
#define ZK_CAT_H_INCLUDED
#endif
