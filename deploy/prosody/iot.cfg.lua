-- Prosody (0.12) site configuration for a fleet of xmpp-iot-agent gateways.
-- Copy to /etc/prosody/conf.d/iot.cfg.lua (or merge into prosody.cfg.lua),
-- replace iot.example.org, put a real certificate in place, then:
--   prosodyctl check config && systemctl reload prosody
--   prosodyctl adduser gateway-kitchen@iot.example.org   (one account per gateway)
--   prosodyctl adduser alice@iot.example.org             (the people)

admins = { "admin@iot.example.org" }

modules_enabled = {
    "roster"; "saslauth"; "tls"; "disco"; "ping"; "time"; "uptime"; "version";
    "carbons";      -- people see the gateway's replies on all their devices
    "offline";      -- alarms reach people who were offline
    "smacks";       -- XEP-0198 for flaky links (phones and gateways)
    "csi_simple";   -- phones in the background get less chatter
    "blocklist";
    "limits";
    "admin_adhoc";
    "posix";
}
modules_disabled = { "s2s" }   -- a private fleet needs no federation; remove this line to federate

-- Security: TLS for everything, no self-service accounts, hashed passwords.
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"

-- Gateways send small stanzas rarely. These limits allow a burst of readings
-- but stop a misbehaving or compromised client from flooding the server.
limits = {
    c2s = { rate = "4kb/s"; burst = "10s"; };
}
c2s_stanza_size_limit = 64 * 1024

-- Let gateways resume sessions after short outages (XEP-0198).
smacks_hibernation_time = 600
smacks_max_unacked_stanzas = 500

-- Send small stanzas at once: with Nagle on, request/response round trips stall ~40 ms.
network_settings = { nagle = false }

VirtualHost "iot.example.org"
    ssl = {
        certificate = "/etc/prosody/certs/iot.example.org.crt";
        key = "/etc/prosody/certs/iot.example.org.key";
    }
