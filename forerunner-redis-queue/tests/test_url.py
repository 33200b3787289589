"""Reading queue URLs: every form the README lists, every option, and the refusals.

A URL is the whole configuration of a queue, so each mistake must be refused with a
message that names the URL (password masked) and says what to write instead.
"""

from __future__ import annotations

import pytest

from forerunner.errors import ConfigurationError
from forerunner_redis_queue.url import RedisQueueConfig, parse_url


def test_a_plain_url_means_database_0_of_that_server_under_the_default_prefix() -> None:
    config = parse_url("redis://cache.example:6380")

    assert config == RedisQueueConfig(
        display="redis://cache.example:6380", nodes=(("cache.example", 6380),)
    )
    assert config.prefix == "forerunner"
    assert config.ordering == "fifo"
    assert not config.tls
    assert not config.cluster


def test_the_path_names_the_database_and_the_query_the_options() -> None:
    config = parse_url(
        "redis://127.0.0.1/15?prefix=ci-42&ordering=random&pool_size=8&pool_timeout=2.5"
        "&socket_timeout=3&connect_timeout=0.5"
    )

    assert config.nodes == (("127.0.0.1", 6379),)
    assert config.db == 15
    assert config.prefix == "ci-42"
    assert config.ordering == "random"
    assert config.pool_size == 8
    assert config.pool_timeout == 2.5
    assert config.socket_timeout == 3.0
    assert config.connect_timeout == 0.5


def test_user_and_password_are_read_percent_decoded_and_never_shown() -> None:
    config = parse_url("redis://app:s%40cret%3A1@redis.internal:6379/2")

    assert (config.username, config.password) == ("app", "s@cret:1")
    assert config.display == "redis://app:***@redis.internal:6379/2"
    assert "s@cret" not in repr(config)


def test_a_password_without_a_user_is_redis_default_user() -> None:
    config = parse_url("redis://:hunter2@localhost")

    assert (config.username, config.password) == (None, "hunter2")


def test_an_empty_host_is_localhost() -> None:
    assert parse_url("redis://").nodes == (("localhost", 6379),)


def test_ipv6_hosts_are_written_in_brackets() -> None:
    assert parse_url("redis://[::1]:7000/1").nodes == (("::1", 7000),)


def test_rediss_is_tls_with_certificate_options() -> None:
    config = parse_url(
        "rediss://redis.example/0?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/c.pem"
        "&ssl_keyfile=/k.pem&ssl_cert_reqs=optional"
    )

    assert config.tls
    assert (config.ssl_ca_certs, config.ssl_certfile, config.ssl_keyfile) == (
        "/etc/ca.pem",
        "/c.pem",
        "/k.pem",
    )
    assert config.ssl_cert_reqs == "optional"


def test_unix_urls_name_a_socket_path_and_the_database_as_an_option() -> None:
    config = parse_url("unix://:pw@/run/redis/redis.sock?db=3&prefix=p")

    assert config.unix_path == "/run/redis/redis.sock"
    assert config.nodes == ()
    assert (config.db, config.prefix, config.password) == (3, "p", "pw")


def test_cluster_urls_list_seed_nodes_separated_by_commas() -> None:
    config = parse_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002?prefix=jobs")

    assert config.cluster
    assert not config.tls
    assert config.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002))
    assert parse_url("rediss+cluster://10.0.0.1:7000").tls


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("memcached://localhost", "serves redis, rediss, unix, redis+cluster, rediss+cluster"),
        ("redis://localhost/0?prefx=a", "unknown option 'prefx'; the options are"),
        ("redis://localhost/0?password=x", "put the password in the URL"),
        ("redis://localhost/0?prefix=a&prefix=b", "option 'prefix' is given twice"),
        ("redis://localhost/0?ordering=lifo", "ordering must be one of fifo, random"),
        ("redis://localhost/0?pool_size=0", "pool_size must be a whole number >= 1"),
        ("redis://localhost/0?socket_timeout=-1", "must be a positive number of seconds"),
        ("redis://localhost/0?connect_timeout=nan", "must be a positive number of seconds"),
        ("redis://localhost/db0", "database number such as 0 or 15"),
        ("redis://localhost/1?db=2", "name the database once"),
        ("redis://localhost:port", "port 'port' of 'localhost:port' is not a port number"),
        ("redis://localhost:70000", "is not a port number"),
        ("redis://a:1,b:2", "several hosts make a cluster URL"),
        ("redis+cluster://", "name at least one node"),
        ("redis+cluster://a:7000/1", "a Redis Cluster has only database 0"),
        ("redis://localhost?ssl_ca_certs=/ca.pem", "only apply to TLS: write rediss://"),
        ("unix://relative.sock", "write unix:///absolute/path/to/redis.sock"),
        ("redis://localhost/0#frag", "has no #fragment"),
        ("redis://localhost/0?prefix=", "prefix '' is not usable"),
        ("redis://localhost/0?prefix=a{b}", "without '{' or '}'"),
    ],
)
def test_a_bad_url_is_refused_saying_what_to_write(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_url(url)

    assert says in raised.value.message
    assert raised.value.message.startswith("queue URL ")


def test_the_refusal_masks_the_password() -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_url("redis://user:topsecret@localhost/0?bogus=1")

    assert "topsecret" not in raised.value.message
    assert "redis://user:***@localhost/0?bogus=1" in raised.value.message
