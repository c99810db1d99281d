namespace MLNetTransformerExtensions.Onnx;

/// <summary>Where ONNX Runtime runs the exported graph.</summary>
public enum OnnxExecutionProvider
{
    /// <summary>ONNX Runtime's CPU kernels (int8 graphs use its integer matrix kernels).</summary>
    Cpu,

    /// <summary>
    /// NVIDIA GPUs through ONNX Runtime's CUDA execution provider. Needs the CUDA build of ONNX Runtime
    /// (reference <c>Microsoft.ML.OnnxRuntime.Gpu.Linux</c> or <c>.Gpu.Windows</c> of the same version instead of
    /// <c>Microsoft.ML.OnnxRuntime</c>), CUDA and cuDNN on the machine, and a GPU; otherwise creating the scorer fails
    /// with a message that says which is missing.
    /// </summary>
    Cuda,
}
