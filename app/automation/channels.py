"""Where reminders go: e-mail (SMTP, from config.py) and group chat robots (企业微信 and 钉钉 webhooks,
plain HTTPS posts of JSON). Each sender raises SendFailed with a line a person can act on."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import time
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formataddr
from typing import Any

TIMEOUT = 15  # seconds for a mail server or a robot to answer


class SendFailed(Exception):
    """A message could not be delivered: why, as the server said it (kept with the sending, retried)."""


def send_email(config: dict[str, Any], to: str, subject: str, text: str,
               attachments: tuple[tuple[str, str, bytes], ...] = ()) -> None:
    """Send a plain-text e-mail through CRM_SMTP_*, with (file name, MIME type, bytes) attachments;
    SendFailed naming what went wrong."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config["CRM_SMTP_FROM"] or formataddr(("化工客户管理", f"crm@{config['CRM_SMTP_HOST']}"))
    message["To"] = to
    message.set_content(text)
    for name, mimetype, body in attachments:
        main, _, sub = mimetype.partition("/")
        message.add_attachment(body, maintype=main, subtype=sub, filename=name)
    host, port, security = config["CRM_SMTP_HOST"], int(config["CRM_SMTP_PORT"]), config["CRM_SMTP_SECURITY"]
    try:
        server: smtplib.SMTP = (smtplib.SMTP_SSL(host, port, timeout=TIMEOUT) if security == "ssl"
                                else smtplib.SMTP(host, port, timeout=TIMEOUT))
        with server:
            if security == "starttls":
                server.starttls()
            if config["CRM_SMTP_USER"]:
                server.login(config["CRM_SMTP_USER"], config["CRM_SMTP_PASSWORD"] or "")
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendFailed(f"mail server {host}:{port}: {type(exc).__name__}: {exc}"[:480]) from None


def robot_body(robot: dict[str, Any], title: str, markdown: str) -> dict[str, Any]:
    """Return the JSON a robot takes: both 企业微信 and 钉钉 show markdown."""
    if robot["kind"] == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": markdown}}
    return {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}


def robot_url(robot: dict[str, Any], at: float | None = None) -> str:
    """Return the robot's address; a 钉钉 robot with a secret is signed (timestamp and HMAC-SHA256)."""
    url = str(robot["url"])
    if robot["kind"] != "dingtalk" or not robot.get("secret"):
        return url
    stamp = str(int((at if at is not None else time.time()) * 1000))
    digest = hmac.new(str(robot["secret"]).encode(), f"{stamp}\n{robot['secret']}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={stamp}&sign={sign}"


def send_robot(robot: dict[str, Any], title: str, markdown: str) -> None:
    """Post a markdown message to a chat robot; SendFailed when it cannot be reached or refuses it."""
    body = json.dumps(robot_body(robot, title, markdown), ensure_ascii=False).encode()
    request = urllib.request.Request(robot_url(robot), data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310 - an https robot URL
            reply = json.loads(answer.read() or b"{}")
    except (OSError, ValueError) as exc:
        raise SendFailed(f"robot {robot['name']}: {type(exc).__name__}: {exc}"[:480]) from None
    if reply.get("errcode", 0) != 0:
        raise SendFailed(f"robot {robot['name']} refused: {reply.get('errcode')} {reply.get('errmsg', '')}"[:480])
