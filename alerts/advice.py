"""What a failure means and what to check, in words for the person who has to go and look.

The status page shows :data:`MEANINGS` next to each failed probe result; alert emails show
the same advice for the probe that failed, or a rule's own advice (:data:`RULE_ADVICE`)
where the probe worked and the device itself reported the problem (toner, paper, ports).
One module, so both say the same thing.
"""

from __future__ import annotations

from probes.result import Status

#: What a failed probe status means and what to check.
MEANINGS: dict[Status, str] = {
    Status.OK: "",
    Status.PARTIAL: "Some data arrived and some did not. Check the explanation for what "
    "was missing; a busy device or a lossy link can cause it.",
    Status.TIMEOUT: "Nothing answered in time. Check that the device is powered on and "
    "plugged in, its switch port is up, and no firewall drops the traffic.",
    Status.UNREACHABLE: "The network reports no route to the device. Check the address, "
    "the VLAN and the router or switch in between.",
    Status.REFUSED: "The device answered but refused the connection: the service is not "
    "running or listens on another port.",
    Status.DNS_ERROR: "The name could not be resolved. Check the DNS record or use an "
    "address in the inventory.",
    Status.AUTH_ERROR: "The device rejected netmon's credentials. Check that the SNMP "
    "community or SNMPv3 user, protocols and passwords match the device.",
    Status.PROTOCOL_ERROR: "The device answered with something netmon cannot read. Check "
    "the port and the SNMP version configured for it.",
    Status.PERMISSION_ERROR: "netmon lacks a privilege it needs (for ICMP: CAP_NET_RAW or "
    "net.ipv4.ping_group_range). See the README, 'ICMP without root'.",
    Status.CONFIG_ERROR: "netmon's settings for this probe are unusable. Run "
    "`netmon check-config`.",
    Status.ERROR: "A bug in netmon: the probe crashed. The log has the traceback.",
}

#: Advice for the built-in rules whose probe succeeded: the device reported the problem.
RULE_ADVICE: dict[str, str] = {
    "printer_supply_low": "Order a replacement now (the supply's description usually "
    "names the part) so it is there when the printer runs out.",
    "printer_supply_empty": "Fit a new one: the printer may stop printing until you do "
    "(the supply's description usually names the part).",
    "printer_waste_nearly_full": "Empty or replace the waste container before the "
    "printer stops.",
    "printer_paper_out": "Refill the paper trays.",
    "printer_jam": "Clear the paper jam (the printer's panel shows where).",
    "printer_door_open": "Close the printer's doors and covers.",
    "printer_service_requested": "Look at the printer's panel for its service message; "
    "it may need an engineer.",
    "interface_down": "Check the cable and the device on that port; if the port should "
    "be unused, disable it on the switch.",
    "interface_errors": "Errors usually mean a bad cable, a bad patch or a speed/duplex "
    "mismatch: reseat or replace the cable.",
    "interface_speed_dropped": "A port running slower than usual often has a damaged "
    "cable or a device that negotiated down: check both.",
    "device_rebooted": "If nobody restarted it, check its power supply and its log.",
    "disk_nearly_full": "Free space on that disk or make it larger.",
    "memory_nearly_full": "Check which processes use the memory.",
    "high_cpu": "Check which processes keep the CPU busy.",
    "ups_on_battery": "Check the mains power to the UPS; devices on it shut down when "
    "its battery runs out.",
    "ups_battery_replace": "Order a replacement battery for the UPS.",
    "high_packet_loss": "Check the cabling and the switch ports between netmon and the "
    "device; a failing port or a loop can drop packets.",
    "high_latency": "Check for a saturated link or a busy device on the way.",
}


def advice(rule: str, status: Status | None) -> str:
    """What to check for an alert of ``rule`` whose probe ended in ``status`` (None:
    not known): the probe's meaning when it failed, else the rule's own advice."""
    if status is not None and not status.success:
        return MEANINGS.get(status, "")
    return RULE_ADVICE.get(rule, "")

