/*
 * Private: fork() safety (fork.c).
 */
#ifndef SPECTATOR_FORK_H
#define SPECTATOR_FORK_H

/* Install the pthread_atfork handlers (once per process). */
void spectator__fork_init(void);

#endif
