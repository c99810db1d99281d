namespace MLNetTransformerExtensions.Export;

/// <summary>Options of <see cref="TextClassifierExportCatalog.ExportTextClassifier"/>.</summary>
public sealed class TextClassifierExportOptions
{
    /// <summary>The format to write.</summary>
    public TextClassifierExportFormat Format = Defaults.Format;

    /// <summary>
    /// With <see cref="TextClassifierExportFormat.Onnx"/>: write the linear layers' weights as int8, one scale per output
    /// channel, with the activations quantized at run time (dynamic quantization). The file is about a quarter of the
    /// float32 one for the layers, and ONNX Runtime's int8 kernels score faster on CPUs; predictions move slightly.
    /// Embedding tables stay float32.
    /// </summary>
    public bool QuantizeInt8 = Defaults.QuantizeInt8;

    /// <summary>Whether an existing, non-empty output folder may be written into (its files of the same names are replaced).</summary>
    public bool Overwrite = Defaults.Overwrite;

    /// <summary>The defaults.</summary>
    public static class Defaults
    {
        /// <summary>ONNX.</summary>
        public const TextClassifierExportFormat Format = TextClassifierExportFormat.Onnx;

        /// <summary>Float32 weights.</summary>
        public const bool QuantizeInt8 = false;

        /// <summary>Refuse a non-empty folder.</summary>
        public const bool Overwrite = false;
    }
}
