FROM python:3.11-slim
WORKDIR /app
# requirements.lock alone: the runtime without the `embedded` extra (its PostgreSQL build alone is
# ~73 MB). The image uses the Redis and Postgres at REDIS_URL and DATABASE_URL, and says so in one
# line when they don't answer.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
RUN pip install --no-cache-dir --no-deps .
USER nobody
