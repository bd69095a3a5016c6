"""The LLM code below the stages: engines (`engine`), the LLM stage (`stage`), answer layouts (`output_format`).

Generation (generators.stages) and the LLM augmenters (augmenters.llm_paraphrase, llm_negatives)
both use it, so it sits in the core and those packages need not import each other.
"""
