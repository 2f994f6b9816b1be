/* count.h - counting in /proc for the seed example (count.c). */
#ifndef SEED_COUNT_H
#define SEED_COUNT_H

/* The processes descended from this one, zombies included, or -1 if /proc
 * cannot be read. */
int count_descendants(void);

/* The descriptors this process has open, or -1. */
int count_descriptors(void);

#endif
