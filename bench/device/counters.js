// XS heap counters (counters.c), for bench:device.
export function counters(collect) @ "xs_ss_counters";
export function resetStackPeak() @ "xs_ss_reset_stack_peak";
export function census() @ "xs_ss_census";
