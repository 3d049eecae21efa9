"""The fleet side of MQTT: subscribe to a prefix that bridges publish under and store every device's records in
one set of sinks (an SQLite database, the live page), de-duplicated by (device, epoch, seq).

Library use: `FleetSubscriber(parse_mqtt_url(url), sinks).run(stop)`; `wedge fleet` (wedge.cli.fleet) is the
command line over it.
"""
