using MLNetTransformerExtensions.MLNet;

namespace MLNetTransformerExtensions.Onnx;

/// <summary>Options of <see cref="OnnxTextClassifierCatalog.ScoreExportedTextClassifier(Microsoft.ML.TransformsCatalog, string, OnnxTextClassifierOptions)"/>: columns, batch size and where ONNX Runtime runs.</summary>
public sealed class OnnxTextClassifierOptions : TextClassificationOptions
{
    /// <summary>CPU or CUDA.</summary>
    public OnnxExecutionProvider ExecutionProvider = OnnxDefaults.ExecutionProvider;

    /// <summary>The GPU to use with <see cref="OnnxExecutionProvider.Cuda"/>.</summary>
    public int GpuDeviceId = OnnxDefaults.GpuDeviceId;

    /// <summary>Threads ONNX Runtime uses inside one operator; 0 lets it choose (one per physical core).</summary>
    public int IntraOpNumThreads = OnnxDefaults.IntraOpNumThreads;

    /// <summary>The defaults of the ONNX Runtime options.</summary>
    public static class OnnxDefaults
    {
        /// <summary>CPU.</summary>
        public const OnnxExecutionProvider ExecutionProvider = OnnxExecutionProvider.Cpu;

        /// <summary>The first GPU.</summary>
        public const int GpuDeviceId = 0;

        /// <summary>ONNX Runtime's choice.</summary>
        public const int IntraOpNumThreads = 0;
    }
}
