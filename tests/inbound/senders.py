"""Authentication results as a receiving server stamps them on inbound mail, for the tests."""

FORGED = {"Received-SPF": "fail (p-pm-inboundg02a-aws-euwest1a: domain of alice@example.com does not designate "
                          "198.51.100.7 as permitted sender) receiver=p-pm-inboundg02a-aws-euwest1a; "
                          "client-ip=198.51.100.7; envelope-from=alice@example.com;",
          "Authentication-Results": "p-pm-inboundg02a-aws-euwest1a; spf=fail smtp.mailfrom=example.com; "
                                    "dkim=none; dmarc=fail (p=reject) header.from=example.com"}
SOFTFAIL = {"Received-SPF": "softfail (receiver: domain of transitioning alice@example.com does not designate "
                            "198.51.100.7 as permitted sender) client-ip=198.51.100.7; "
                            "envelope-from=alice@example.com;"}
GENUINE = {"Received-SPF": "pass (receiver: domain of alice@example.com designates 203.0.113.5 as permitted sender) "
                           "client-ip=203.0.113.5; envelope-from=alice@example.com;",
           "Authentication-Results": "receiver; spf=pass smtp.mailfrom=alice@example.com; "
                                     "dkim=pass header.d=example.com; dmarc=pass header.from=example.com"}


def spf_pass(address: str) -> dict[str, str]:
    return {"Received-SPF": f"pass (receiver: domain of {address} designates 203.0.113.5 as permitted sender)"}


def stamped(payload: dict, headers: dict[str, str]) -> dict:
    """The payload as Postmark delivers it: the receiving server's own headers above the message's."""
    payload["Headers"] = [{"Name": k, "Value": v} for k, v in headers.items()] + payload["Headers"]
    return payload
