FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
# The image's user owns its data folder: HUBFLOW_HOME, with the staging and outbox folders that
# the compose file mounts as shared volumes. An empty named volume takes the owner and the mode
# of the folder it is mounted on, so the node user can write there and no one else can read
# (the files hold personal data; README "Personal data on disk").
ENV HUBFLOW_HOME=/var/lib/hubflow \
    HUBFLOW_STAGING_DIR=/var/lib/hubflow/staging \
    HUBFLOW_OUTBOX_DIR=/var/lib/hubflow/outbox
RUN install -d -o node -g node -m 0700 /var/lib/hubflow /var/lib/hubflow/staging /var/lib/hubflow/outbox
# PostgreSQL and Redis come from the compose file's services (HUBFLOW_DATABASE_URL, HUBFLOW_REDIS_URL).
USER node
ENTRYPOINT ["node", "bin/hubflow.js"]
