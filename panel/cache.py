"""Django's Redis cache backend, keeping one client per connection pool.

Django's client builds a new `redis.Redis` for every cache call, and since
redis-py 5 that means filling a table of some 170 response callbacks each
time: a cost every Basic-authenticated request paid on its credential cache
look-up. A `redis.Redis` is safe to share between threads (it takes a
connection from its pool per command), so one per pool is kept instead.
"""

from django.core.cache.backends import redis


class _ReusingClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._client(connection_pool=self._get_connection_pool(write))
            self._clients[index] = client
        return client


class RedisCache(redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient
