FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
# PostgreSQL and Redis come from the compose file's services (HUBFLOW_DATABASE_URL, HUBFLOW_REDIS_URL).
USER node
ENTRYPOINT ["node", "bin/hubflow.js"]
