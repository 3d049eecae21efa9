"""Wire protocols: the one place a byte layout is defined.

SMP over serial (`smp_serial`: framing; `smp_messages`: headers, bodies, replies), wedge's own SMP group
(`wedge_group`) and the console text a board prints (`console`).
"""
