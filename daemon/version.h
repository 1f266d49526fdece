#ifndef BECKON_VERSION_H
#define BECKON_VERSION_H
#define BECKON_VERSION "0.1.0"
#endif
