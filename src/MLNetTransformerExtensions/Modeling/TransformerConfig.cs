using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>The model families this library implements, named by HuggingFace's <c>model_type</c>.</summary>
public enum ModelFamily
{
    /// <summary>BERT (<c>bert</c>): bidirectional encoder, post-LN, pooler.</summary>
    Bert,

    /// <summary>RoBERTa (<c>roberta</c>): BERT's body with padding-offset positions.</summary>
    Roberta,

    /// <summary>DistilBERT (<c>distilbert</c>): a 6-layer-style BERT without token types or pooler.</summary>
    DistilBert,

    /// <summary>GPT-2 (<c>gpt2</c>): causal decoder, pre-LN.</summary>
    Gpt2,

    /// <summary>BART (<c>bart</c>): encoder-decoder, post-LN, learned positions offset by 2.</summary>
    Bart,

    /// <summary>T5 (<c>t5</c>): encoder-decoder, pre-RMSNorm, relative position buckets, no biases.</summary>
    T5,
}

/// <summary>Activation functions named as in HuggingFace's <c>ACT2FN</c>.</summary>
public enum Activation
{
    /// <summary><c>gelu</c>: exact, erf-based GELU.</summary>
    Gelu,

    /// <summary><c>gelu_new</c>, <c>gelu_pytorch_tanh</c>, <c>gelu_fast</c>: the tanh approximation.</summary>
    GeluTanh,

    /// <summary><c>relu</c>.</summary>
    Relu,

    /// <summary><c>silu</c> / <c>swish</c>.</summary>
    Silu,
}

/// <summary>
/// A HuggingFace <c>config.json</c> read into the sizes and constants the models use. Every family's own key names
/// are honoured (<c>hidden_size</c> / <c>dim</c> / <c>n_embd</c>, ...); the original JSON is kept so that saving
/// writes back every key it had.
/// </summary>
public sealed record TransformerConfig
{
    /// <summary>The model family (<c>model_type</c>).</summary>
    public required ModelFamily Family { get; init; }

    /// <summary>Vocabulary size (<c>vocab_size</c>).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Hidden size (<c>hidden_size</c>, <c>dim</c>, <c>n_embd</c>).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Number of layers (<c>num_hidden_layers</c>, <c>n_layers</c>, <c>n_layer</c>).</summary>
    public required int NumLayers { get; init; }

    /// <summary>Attention heads per layer (<c>num_attention_heads</c>, <c>n_heads</c>, <c>n_head</c>).</summary>
    public required int NumHeads { get; init; }

    /// <summary>Feed-forward inner size (<c>intermediate_size</c>, <c>hidden_dim</c>, <c>n_inner</c> or 4 × hidden).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Rows of the position table (<c>max_position_embeddings</c>, <c>n_positions</c>).</summary>
    public required int MaxPositions { get; init; }

    /// <summary>Token types (<c>type_vocab_size</c>); 0 for families without them.</summary>
    public int TypeVocabSize { get; init; }

    /// <summary>LayerNorm epsilon (<c>layer_norm_eps</c>, <c>layer_norm_epsilon</c>; DistilBERT: 1e-12).</summary>
    public required double LayerNormEps { get; init; }

    /// <summary>Feed-forward activation (<c>hidden_act</c>, <c>activation</c>, <c>activation_function</c>).</summary>
    public required Activation HiddenAct { get; init; }

    /// <summary>Dropout on embeddings and residual branches.</summary>
    public double HiddenDropout { get; init; }

    /// <summary>Dropout on attention probabilities.</summary>
    public double AttentionDropout { get; init; }

    /// <summary>Dropout before the classification head (<c>classifier_dropout</c>, <c>seq_classif_dropout</c>, <c>summary_first_dropout</c>).</summary>
    public double ClassifierDropout { get; init; }

    /// <summary>Dropout on GPT-2's summed embeddings (<c>embd_pdrop</c>).</summary>
    public double EmbeddingDropout { get; init; }

    /// <summary>Padding token id (<c>pad_token_id</c>), if the config names one.</summary>
    public int? PadTokenId { get; init; }

    /// <summary>End-of-sequence token id (<c>eos_token_id</c>), if any.</summary>
    public int? EosTokenId { get; init; }

    /// <summary>Standard deviation of the weight initialisation (<c>initializer_range</c>, BART's <c>init_std</c>); for T5 its <c>initializer_factor</c>, which scales T5's fan-in-based initialisation.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>Whether output projections share the input embeddings (<c>tie_word_embeddings</c>, default true).</summary>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>GPT-2's <c>scale_attn_weights</c>: divide attention scores by √head_dim (default true).</summary>
    public bool ScaleAttentionWeights { get; init; } = true;

    /// <summary>GPT-2's <c>scale_attn_by_inverse_layer_idx</c>: also divide scores by the layer number (default false).</summary>
    public bool ScaleAttentionByInverseLayerIndex { get; init; }

    /// <summary>DistilBERT's <c>sinusoidal_pos_embds</c>: fixed sinusoidal positions when trained from scratch.</summary>
    public bool SinusoidalPositions { get; init; }

    /// <summary>Encoder-decoders: decoder layers (<c>decoder_layers</c>, <c>num_decoder_layers</c>); otherwise <see cref="NumLayers"/>.</summary>
    public int DecoderLayers { get => _decoderLayers ?? NumLayers; init => _decoderLayers = value; }

    /// <summary>Encoder-decoders: decoder attention heads (<c>decoder_attention_heads</c>); otherwise <see cref="NumHeads"/>.</summary>
    public int DecoderHeads { get => _decoderHeads ?? NumHeads; init => _decoderHeads = value; }

    /// <summary>Encoder-decoders: the decoder's feed-forward size (<c>decoder_ffn_dim</c>); otherwise <see cref="IntermediateSize"/>.</summary>
    public int DecoderIntermediateSize { get => _decoderIntermediateSize ?? IntermediateSize; init => _decoderIntermediateSize = value; }

    /// <summary>T5's <c>d_kv</c>: the size of one attention head, independent of the hidden size; null elsewhere.</summary>
    public int? KeyValueSize { get; init; }

    /// <summary>BART's <c>scale_embedding</c>: multiply token embeddings by √d_model.</summary>
    public bool ScaleEmbedding { get; init; }

    /// <summary>Encoder-decoders: the first decoder input (<c>decoder_start_token_id</c>: <c>&lt;/s&gt;</c> for BART, <c>&lt;pad&gt;</c> for T5).</summary>
    public int? DecoderStartTokenId { get; init; }

    /// <summary>T5's <c>relative_attention_num_buckets</c>.</summary>
    public int RelativeAttentionNumBuckets { get; init; }

    /// <summary>T5's <c>relative_attention_max_distance</c>.</summary>
    public int RelativeAttentionMaxDistance { get; init; }

    /// <summary>T5's gated feed-forward (<c>feed_forward_proj</c> <c>gated-*</c>): <c>wo(act(wi_0 x) * wi_1 x)</c>.</summary>
    public bool GatedFeedForward { get; init; }

    /// <summary>BART's <c>activation_dropout</c>: dropout after the feed-forward activation.</summary>
    public double ActivationDropout { get; init; }

    /// <summary>Whether the family is an encoder-decoder (BART, T5).</summary>
    public bool IsEncoderDecoder => Family is ModelFamily.Bart or ModelFamily.T5;

    private readonly int? _decoderLayers;
    private readonly int? _decoderHeads;
    private readonly int? _decoderIntermediateSize;

    /// <summary>Class names by id (<c>id2label</c>), or <c>LABEL_i</c> defaults for <see cref="NumLabels"/> classes.</summary>
    public required IReadOnlyList<string> Labels { get; init; }

    /// <summary>The number of classes (<c>num_labels</c>, or the size of <c>id2label</c>; HuggingFace's default is 2).</summary>
    public int NumLabels => Labels.Count;

    /// <summary>The size of one attention head.</summary>
    public int HeadDim => KeyValueSize ?? HiddenSize / NumHeads;

    /// <summary>The JSON this config was read from (or will be written as).</summary>
    public required JsonObject Json { get; init; }

    /// <summary>Reads <c>config.json</c> from a model folder.</summary>
    /// <param name="folder">A HuggingFace model folder.</param>
    /// <exception cref="FileNotFoundException">The folder has no config.json.</exception>
    /// <exception cref="InvalidDataException">The config is malformed, of an unsupported family, or inconsistent.</exception>
    public static TransformerConfig FromFolder(string folder)
    {
        var path = Path.Combine(folder, "config.json");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The model folder '{folder}' has no config.json. Point the model path at a HuggingFace model folder (config.json plus weights and tokenizer files).", path);
        }

        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }

        if (node is not JsonObject json)
        {
            throw new InvalidDataException($"'{path}' must hold a JSON object.");
        }

        return Parse(json, path);
    }

    /// <summary>Reads a config from its JSON object.</summary>
    /// <param name="json">The parsed config.json.</param>
    /// <param name="source">Where it came from, for error messages.</param>
    /// <exception cref="InvalidDataException">The config is malformed, of an unsupported family, or inconsistent.</exception>
    public static TransformerConfig Parse(JsonObject json, string source = "config.json")
    {
        var reader = new Reader(json, source);
        var modelType = reader.String("model_type") ?? throw new InvalidDataException($"'{source}' has no model_type; expected one of bert, roberta, distilbert, gpt2, bart, t5.");
        var family = modelType switch
        {
            "bert" => ModelFamily.Bert,
            "roberta" => ModelFamily.Roberta,
            "distilbert" => ModelFamily.DistilBert,
            "gpt2" => ModelFamily.Gpt2,
            "bart" => ModelFamily.Bart,
            "t5" => ModelFamily.T5,
            _ => throw new InvalidDataException($"'{source}' has model_type '{modelType}', which this library does not implement; supported: bert, roberta, distilbert, gpt2, bart, t5."),
        };

        var labels = ReadLabels(reader, json, source);
        var config = family switch
        {
            ModelFamily.Bert or ModelFamily.Roberta => new TransformerConfig
            {
                Family = family,
                VocabSize = reader.Int("vocab_size", 30522),
                HiddenSize = reader.Int("hidden_size", 768),
                NumLayers = reader.Int("num_hidden_layers", 12),
                NumHeads = reader.Int("num_attention_heads", 12),
                IntermediateSize = reader.Int("intermediate_size", 3072),
                MaxPositions = reader.Int("max_position_embeddings", 512),
                TypeVocabSize = reader.Int("type_vocab_size", 2),
                LayerNormEps = reader.Double("layer_norm_eps", 1e-12),
                HiddenAct = ParseActivation(reader.String("hidden_act") ?? "gelu", source),
                HiddenDropout = reader.Double("hidden_dropout_prob", 0.1),
                AttentionDropout = reader.Double("attention_probs_dropout_prob", 0.1),
                ClassifierDropout = reader.NullableDouble("classifier_dropout") ?? reader.Double("hidden_dropout_prob", 0.1),
                PadTokenId = reader.NullableInt("pad_token_id") ?? (family == ModelFamily.Roberta ? 1 : 0),
                EosTokenId = reader.NullableInt("eos_token_id"),
                InitializerRange = reader.Double("initializer_range", 0.02),
                TieWordEmbeddings = reader.Bool("tie_word_embeddings", true),
                Labels = labels,
                Json = json,
            },
            ModelFamily.DistilBert => new TransformerConfig
            {
                Family = family,
                VocabSize = reader.Int("vocab_size", 30522),
                HiddenSize = reader.Int("dim", 768),
                NumLayers = reader.Int("n_layers", 6),
                NumHeads = reader.Int("n_heads", 12),
                IntermediateSize = reader.Int("hidden_dim", 3072),
                MaxPositions = reader.Int("max_position_embeddings", 512),
                LayerNormEps = 1e-12, // fixed in DistilBERT's code, not in its config
                HiddenAct = ParseActivation(reader.String("activation") ?? "gelu", source),
                HiddenDropout = reader.Double("dropout", 0.1),
                AttentionDropout = reader.Double("attention_dropout", 0.1),
                ClassifierDropout = reader.Double("seq_classif_dropout", 0.2),
                PadTokenId = reader.NullableInt("pad_token_id") ?? 0,
                InitializerRange = reader.Double("initializer_range", 0.02),
                TieWordEmbeddings = reader.Bool("tie_word_embeddings", true),
                SinusoidalPositions = reader.Bool("sinusoidal_pos_embds", false),
                Labels = labels,
                Json = json,
            },
            ModelFamily.Bart => new TransformerConfig
            {
                // BartConfig's defaults (facebook/bart-large sizes); LayerNorm eps is nn.LayerNorm's default in BART's code.
                Family = family,
                VocabSize = reader.Int("vocab_size", 50265),
                HiddenSize = reader.Int("d_model", 1024),
                NumLayers = reader.Int("encoder_layers", 12),
                NumHeads = reader.Int("encoder_attention_heads", 16),
                IntermediateSize = reader.Int("encoder_ffn_dim", 4096),
                DecoderLayers = reader.Int("decoder_layers", 12),
                DecoderHeads = reader.Int("decoder_attention_heads", 16),
                DecoderIntermediateSize = reader.Int("decoder_ffn_dim", 4096),
                MaxPositions = reader.Int("max_position_embeddings", 1024),
                LayerNormEps = 1e-5,
                HiddenAct = ParseActivation(reader.String("activation_function") ?? "gelu", source),
                HiddenDropout = reader.Double("dropout", 0.1),
                AttentionDropout = reader.Double("attention_dropout", 0.0),
                ActivationDropout = reader.Double("activation_dropout", 0.0),
                ClassifierDropout = reader.NullableDouble("classifier_dropout") ?? 0.0,
                ScaleEmbedding = reader.Bool("scale_embedding", false),
                PadTokenId = reader.NullableInt("pad_token_id") ?? 1,
                EosTokenId = reader.NullableInt("eos_token_id") ?? 2,
                DecoderStartTokenId = reader.NullableInt("decoder_start_token_id") ?? 2,
                InitializerRange = reader.Double("init_std", 0.02),
                TieWordEmbeddings = reader.Bool("tie_word_embeddings", true),
                Labels = labels,
                Json = json,
            },
            ModelFamily.T5 => ParseT5(reader, labels, json, source),
            _ => new TransformerConfig
            {
                Family = family,
                VocabSize = reader.Int("vocab_size", 50257),
                HiddenSize = reader.Int("n_embd", 768),
                NumLayers = reader.Int("n_layer", 12),
                NumHeads = reader.Int("n_head", 12),
                IntermediateSize = reader.NullableInt("n_inner") ?? 4 * reader.Int("n_embd", 768),
                MaxPositions = reader.Int("n_positions", 1024),
                LayerNormEps = reader.Double("layer_norm_epsilon", 1e-5),
                HiddenAct = ParseActivation(reader.String("activation_function") ?? "gelu_new", source),
                HiddenDropout = reader.Double("resid_pdrop", 0.1),
                AttentionDropout = reader.Double("attn_pdrop", 0.1),
                EmbeddingDropout = reader.Double("embd_pdrop", 0.1),
                ClassifierDropout = reader.Double("summary_first_dropout", 0.1),
                PadTokenId = reader.NullableInt("pad_token_id"),
                EosTokenId = reader.NullableInt("eos_token_id") ?? 50256,
                InitializerRange = reader.Double("initializer_range", 0.02),
                TieWordEmbeddings = reader.Bool("tie_word_embeddings", true),
                ScaleAttentionWeights = reader.Bool("scale_attn_weights", true),
                ScaleAttentionByInverseLayerIndex = reader.Bool("scale_attn_by_inverse_layer_idx", false),
                Labels = labels,
                Json = json,
            },
        };
        config.Validate(source);
        return config;
    }

    /// <summary>
    /// T5Config: <c>feed_forward_proj</c> alone decides the feed-forward, as T5Config's constructor derives
    /// <c>dense_act_fn</c> and <c>is_gated_act</c> from it (<c>gated-gelu</c> means the tanh GELU, <c>gelu_new</c>).
    /// </summary>
    private static TransformerConfig ParseT5(Reader reader, IReadOnlyList<string> labels, JsonObject json, string source)
    {
        var projection = reader.String("feed_forward_proj") ?? "relu";
        var parts = projection.Split('-');
        var gated = parts.Length == 2 && parts[0] == "gated";
        if (parts.Length > 2 || (parts.Length == 2 && !gated))
        {
            throw new InvalidDataException($"'{source}': feed_forward_proj '{projection}' is neither an activation nor 'gated-' followed by one (e.g. 'relu', 'gated-gelu').");
        }

        var activation = projection == "gated-gelu" ? Activation.GeluTanh : ParseActivation(parts[^1], source);
        var layers = reader.Int("num_layers", 6);
        return new TransformerConfig
        {
            Family = ModelFamily.T5,
            VocabSize = reader.Int("vocab_size", 32128),
            HiddenSize = reader.Int("d_model", 512),
            KeyValueSize = reader.Int("d_kv", 64),
            NumLayers = layers,
            NumHeads = reader.Int("num_heads", 8),
            IntermediateSize = reader.Int("d_ff", 2048),
            DecoderLayers = reader.NullableInt("num_decoder_layers") ?? layers,
            DecoderHeads = reader.Int("num_heads", 8),
            DecoderIntermediateSize = reader.Int("d_ff", 2048),
            MaxPositions = reader.Int("n_positions", 512), // relative positions have no table; T5's tokenizers stop at 512
            LayerNormEps = reader.Double("layer_norm_epsilon", 1e-6),
            HiddenAct = activation,
            GatedFeedForward = gated,
            HiddenDropout = reader.Double("dropout_rate", 0.1),
            AttentionDropout = reader.Double("dropout_rate", 0.1),
            ClassifierDropout = reader.NullableDouble("classifier_dropout") ?? 0.0,
            RelativeAttentionNumBuckets = reader.Int("relative_attention_num_buckets", 32),
            RelativeAttentionMaxDistance = reader.Int("relative_attention_max_distance", 128),
            PadTokenId = reader.NullableInt("pad_token_id") ?? 0,
            EosTokenId = reader.NullableInt("eos_token_id") ?? 1,
            DecoderStartTokenId = reader.NullableInt("decoder_start_token_id") ?? reader.NullableInt("pad_token_id") ?? 0,
            InitializerRange = reader.Double("initializer_factor", 1.0),
            TieWordEmbeddings = reader.Bool("tie_word_embeddings", true),
            Labels = labels,
            Json = json,
        };
    }

    /// <summary>A copy whose classes are <paramref name="labels"/> (updates <c>id2label</c>, <c>label2id</c> and <c>num_labels</c>).</summary>
    /// <param name="labels">Class names in id order.</param>
    /// <returns>The new config.</returns>
    public TransformerConfig WithLabels(IReadOnlyList<string> labels)
    {
        if (labels.Count < 1)
        {
            throw new ArgumentException("A classifier needs at least one class.", nameof(labels));
        }

        var json = (JsonObject)Json.DeepClone();
        var id2label = new JsonObject();
        var label2id = new JsonObject();
        for (var i = 0; i < labels.Count; i++)
        {
            id2label[i.ToString(CultureInfo.InvariantCulture)] = labels[i];
            label2id[labels[i]] = i;
        }

        json["id2label"] = id2label;
        json["label2id"] = label2id;
        json.Remove("num_labels");
        return this with { Labels = [.. labels], Json = json };
    }

    /// <summary>The config as HuggingFace's config.json text.</summary>
    /// <returns>Indented JSON.</returns>
    public string ToJson() => Json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    private void Validate(string source)
    {
        void Require(bool ok, string message)
        {
            if (!ok)
            {
                throw new InvalidDataException($"'{source}': {message}");
            }
        }

        Require(VocabSize > 0, $"vocab_size {VocabSize} must be positive");
        Require(HiddenSize > 0, $"the hidden size {HiddenSize} must be positive");
        Require(NumLayers > 0, $"the number of layers {NumLayers} must be positive");
        Require(NumHeads > 0 && (KeyValueSize is not null || HiddenSize % NumHeads == 0), $"the hidden size {HiddenSize} is not divisible by {NumHeads} heads");
        Require(DecoderHeads > 0 && (KeyValueSize is not null || HiddenSize % DecoderHeads == 0), $"the hidden size {HiddenSize} is not divisible by {DecoderHeads} decoder heads");
        Require(DecoderLayers > 0 && DecoderIntermediateSize > 0, $"the decoder needs layers ({DecoderLayers}) and a feed-forward size ({DecoderIntermediateSize})");
        Require(KeyValueSize is null or > 0, $"d_kv {KeyValueSize} must be positive");
        Require(Family != ModelFamily.T5 || (RelativeAttentionNumBuckets >= 2 && RelativeAttentionMaxDistance > 0),
            $"relative_attention_num_buckets {RelativeAttentionNumBuckets} must be at least 2 and relative_attention_max_distance {RelativeAttentionMaxDistance} positive");
        Require(IntermediateSize > 0, $"the intermediate size {IntermediateSize} must be positive");
        Require(MaxPositions > 0, $"the number of positions {MaxPositions} must be positive");
        Require(LayerNormEps > 0, $"the LayerNorm epsilon {LayerNormEps} must be positive");
        Require(PadTokenId is null || (PadTokenId >= 0 && PadTokenId < VocabSize), $"pad_token_id {PadTokenId} is outside the vocabulary of {VocabSize}");
        foreach (var p in new[] { HiddenDropout, AttentionDropout, ClassifierDropout, EmbeddingDropout, ActivationDropout })
        {
            Require(p is >= 0 and < 1, $"dropout probability {p} must be in [0, 1)");
        }
    }

    private static IReadOnlyList<string> ReadLabels(Reader reader, JsonObject json, string source)
    {
        if (json["id2label"] is JsonObject id2label && id2label.Count > 0)
        {
            var labels = new string[id2label.Count];
            foreach (var (key, value) in id2label)
            {
                if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id < 0 || id >= labels.Length || labels[id] is not null)
                {
                    throw new InvalidDataException($"'{source}': id2label must map the ids 0..{labels.Length - 1} once each; found key '{key}'.");
                }

                labels[id] = value?.GetValue<string>() ?? $"LABEL_{id}";
            }

            return labels;
        }

        var count = reader.Int("num_labels", 2);
        return [.. Enumerable.Range(0, count).Select(i => $"LABEL_{i}")];
    }

    private static Activation ParseActivation(string name, string source) => name switch
    {
        "gelu" => Activation.Gelu,
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => Activation.GeluTanh,
        "relu" => Activation.Relu,
        "silu" or "swish" => Activation.Silu,
        _ => throw new InvalidDataException($"'{source}': activation '{name}' is not supported; use gelu, gelu_new, gelu_pytorch_tanh, relu or silu."),
    };

    private readonly struct Reader(JsonObject json, string source)
    {
        public string? String(string key) => json[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

        public int? NullableInt(string key)
        {
            var node = json[key];
            if (node is null)
            {
                return null;
            }

            if (node is JsonArray array && array.Count > 0)
            {
                node = array[0]; // e.g. eos_token_id lists: the first is the canonical one
            }

            return node is JsonValue v && TryNumber(v, out var d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue
                ? (int)d
                : throw new InvalidDataException($"'{source}': '{key}' must be an integer, found {node?.ToJsonString()}");
        }

        public int Int(string key, int fallback) => NullableInt(key) ?? fallback;

        public double? NullableDouble(string key)
        {
            var node = json[key];
            return node is null ? null
                : node is JsonValue v && TryNumber(v, out var d) ? d
                : throw new InvalidDataException($"'{source}': '{key}' must be a number, found {node.ToJsonString()}");
        }

        public double Double(string key, double fallback) => NullableDouble(key) ?? fallback;

        /// <summary>A JSON number, whether parsed from text or created from a .NET int, long or double.</summary>
        private static bool TryNumber(JsonValue value, out double number)
        {
            number = 0;
            return value.GetValueKind() == JsonValueKind.Number
                && double.TryParse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out number);
        }

        public bool Bool(string key, bool fallback)
        {
            var node = json[key];
            return node is null ? fallback
                : node is JsonValue v && v.TryGetValue<bool>(out var b) ? b
                : throw new InvalidDataException($"'{source}': '{key}' must be true or false, found {node.ToJsonString()}");
        }
    }
}
