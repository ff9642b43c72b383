"""The DeepSeekDeployment and PoolProfile API: pydantic models, the single source of the CRD schemas."""
