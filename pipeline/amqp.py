"""RabbitMQ nodes: ``CLAW_BROKER_URL`` names one node, or every node of a cluster separated by ';'.

pika takes a list of connection parameters and tries them in order until one
answers, and Dramatiq's broker passes the list on, so publishers and
consumers connect through the list and move to another node when theirs
goes away. :func:`broker_url_for_process` starts each process at a random
node, so the connections of many processes spread over the cluster instead
of all landing on the first node. :func:`connect` opens a short-lived
connection (health checks, queue depths) the same way.
"""

from __future__ import annotations

import random
from typing import Union

import pika


def node_urls(broker_url: str) -> list[str]:
    return [url.strip() for url in broker_url.split(";") if url.strip()]


def broker_url_for_process(broker_url: str) -> Union[str, list[str]]:
    """What this process gives Dramatiq's broker: the one URL as it is, or the nodes in a random order."""
    urls = node_urls(broker_url)
    if len(urls) == 1:
        return urls[0]
    return random.sample(urls, len(urls))


def connect(broker_url: str, timeout: float) -> pika.BlockingConnection:
    """A connection to the first node (in the order given) that answers within *timeout* seconds."""
    parameters = []
    for url in node_urls(broker_url):
        params = pika.URLParameters(url)
        params.socket_timeout = params.blocked_connection_timeout = params.stack_timeout = timeout
        params.connection_attempts = 1
        parameters.append(params)
    return pika.BlockingConnection(parameters)
