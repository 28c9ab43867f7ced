# The Airflow image of this project: Airflow's official image plus the campaign's requirements.
# docker-compose.yaml builds it; dags/, plugins/ and include/ are mounted, not copied.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11
ARG AIRFLOW_VERSION
COPY requirements.txt /requirements.txt
# Pinning apache-airflow keeps pip from up- or downgrading the Airflow the image was built with.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt
