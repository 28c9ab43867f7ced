# The Airflow image of this project: Airflow's official image, the pinned requirements, and the campaign
# installed as the Airflow provider it is (hubspot-reengagement: pyproject.toml and its source in
# plugins/reengagement). docker-compose.yaml builds it and mounts only dags/, which holds the one-line DAG file.
ARG AIRFLOW_VERSION=3.3.2
FROM apache/airflow:${AIRFLOW_VERSION}-python3.11
ARG AIRFLOW_VERSION
COPY requirements.txt /requirements.txt
# pip builds in the source folder, so the image's airflow user must own it.
COPY --chown=airflow:0 pyproject.toml /opt/hubspot-reengagement/pyproject.toml
COPY --chown=airflow:0 plugins/reengagement /opt/hubspot-reengagement/plugins/reengagement
# Pinning apache-airflow keeps pip from up- or downgrading the Airflow the image was built with.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /requirements.txt /opt/hubspot-reengagement
# The volumes of the campaign's files and of the example warehouse start as these folders, owned by airflow.
RUN mkdir -p /opt/airflow/reengagement /opt/airflow/warehouse
