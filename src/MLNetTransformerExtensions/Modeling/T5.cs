// Mirrors HuggingFace transformers' models/t5/modeling_t5.py (v4.31): T5ForConditionalGeneration, for T5 v1.0
// (relu feed-forward, tied head) and T5 v1.1 / flan-t5 (gated-gelu feed-forward, untied head).
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>RMSNorm: <c>weight · x / √(mean(x²) + eps)</c>, no mean subtraction and no bias, as T5LayerNorm.</summary>
internal sealed class T5LayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double eps;

    public T5LayerNorm(int width, double eps) : base(nameof(T5LayerNorm))
    {
        weight = new Parameter(ones(width));
        this.eps = eps;
        RegisterComponents();
    }

    /// <summary>Normalises the last dimension, in float32 whatever the weights' type (as T5LayerNorm does).</summary>
    /// <param name="hidden">(..., H).</param>
    /// <returns>(..., H) in the weight's type.</returns>
    public override Tensor forward(Tensor hidden)
    {
        var variance = hidden.to(ScalarType.Float32).pow(2).mean([-1], keepdim: true);
        var normalised = hidden * (variance + eps).rsqrt();
        return weight * normalised.to(weight.dtype);
    }
}

/// <summary>T5's relative position buckets and the bias they index (T5Attention._relative_position_bucket and compute_bias).</summary>
internal static class T5RelativePositions
{
    /// <summary>
    /// The bucket of each relative position (key − query): exact below half the buckets (of one direction), then
    /// logarithmic up to <paramref name="maxDistance"/>, clamped to the last bucket. Computed with libtorch's float32
    /// log as HuggingFace does, so the same distances fall into the same buckets.
    /// </summary>
    /// <param name="relative">Key − query positions, int64.</param>
    /// <param name="bidirectional">The encoder's buckets (half for each direction) or the decoder's (the past only).</param>
    /// <param name="buckets">relative_attention_num_buckets.</param>
    /// <param name="maxDistance">relative_attention_max_distance.</param>
    /// <returns>Buckets, int64, shaped as <paramref name="relative"/>.</returns>
    public static Tensor Bucket(Tensor relative, bool bidirectional, int buckets, int maxDistance)
    {
        var result = zeros_like(relative);
        if (bidirectional)
        {
            buckets /= 2;
            result = result + relative.gt(0).to(ScalarType.Int64) * buckets;
            relative = relative.abs();
        }
        else
        {
            relative = -relative.clamp_max(0);
        }

        var maxExact = buckets / 2;
        var isSmall = relative.lt(maxExact);
        var large = (relative.to(ScalarType.Float32) / (double)maxExact).log()
            / Math.Log(maxDistance / (double)maxExact) * (double)(buckets - maxExact);
        var ifLarge = (large.to(ScalarType.Int64) + maxExact).clamp_max(buckets - 1);
        return result + where(isSmall, relative, ifLarge);
    }

    /// <summary>The bias of every (query, key) pair: (1, heads, T_q, T_k).</summary>
    public static Tensor Bias(Embedding table, long queries, long keys, bool bidirectional, int buckets, int maxDistance)
    {
        var device = table.weight!.device;
        var context = arange(queries, dtype: ScalarType.Int64, device: device).unsqueeze(1);   // (T_q, 1)
        var memory = arange(keys, dtype: ScalarType.Int64, device: device).unsqueeze(0);       // (1, T_k)
        var bucket = Bucket(memory - context, bidirectional, buckets, maxDistance);          // (T_q, T_k)
        // (T_q, T_k, nh) -> (1, nh, T_q, T_k)
        return table.call(bucket).permute(2, 0, 1).unsqueeze(0);
    }
}

/// <summary>
/// Bias-free multi-head attention whose scores are <b>not</b> scaled by 1/√d_kv, plus an additive position bias, as
/// T5Attention. Only the first block of a stack owns <c>relative_attention_bias</c>; the others reuse its bias.
/// </summary>
internal sealed class T5Attention : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly Linear q;
    private readonly Linear k;
    private readonly Linear v;
    private readonly Linear o;
    private readonly Embedding? relative_attention_bias;
    private readonly int heads;
    private readonly int keyValueSize;
    private readonly double dropout;

    public T5Attention(TransformerConfig config, bool hasRelativeAttentionBias) : base(nameof(T5Attention))
    {
        heads = config.NumHeads;
        keyValueSize = config.HeadDim;
        dropout = config.AttentionDropout;
        var inner = heads * keyValueSize;
        q = nn.Linear(config.HiddenSize, inner, hasBias: false);
        k = nn.Linear(config.HiddenSize, inner, hasBias: false);
        v = nn.Linear(config.HiddenSize, inner, hasBias: false);
        o = nn.Linear(inner, config.HiddenSize, hasBias: false);
        if (hasRelativeAttentionBias)
        {
            relative_attention_bias = nn.Embedding(config.RelativeAttentionNumBuckets, heads);
        }

        RegisterComponents();
    }

    /// <summary>The relative-position table of the stack's first block (null elsewhere).</summary>
    public Embedding? RelativeAttentionBias => relative_attention_bias;

    /// <summary>Attends from <paramref name="hidden"/> to <paramref name="keyValue"/>.</summary>
    /// <param name="hidden">Queries' states (B, T, H).</param>
    /// <param name="keyValue">Keys' and values' states (B, S, H).</param>
    /// <param name="bias">Position bias and masks, added to the scores: (B or 1, nh or 1, T, S), or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor keyValue, Tensor? bias)
    {
        var (batch, length) = (hidden.shape[0], hidden.shape[1]);
        // (B, T, nh·d_kv) -> (B, nh, T, d_kv)
        Tensor Split(Tensor x) => x.view(batch, -1, heads, keyValueSize).transpose(1, 2);
        // The fused kernel divides by √d_kv; T5 does not scale, so q is multiplied back.
        var context = Layers.Attend(Split(q.call(hidden)), Split(k.call(keyValue)), Split(v.call(keyValue)),
            bias, training ? dropout : 0.0, causal: false, scale: Math.Sqrt(keyValueSize));
        // (B, nh, T, d_kv) -> (B, T, nh·d_kv)
        return o.call(context.transpose(1, 2).reshape(batch, length, heads * keyValueSize));
    }
}

/// <summary>x + dropout(SelfAttention(layer_norm(x))), as T5LayerSelfAttention.</summary>
internal sealed class T5LayerSelfAttention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly T5Attention SelfAttention;
    private readonly T5LayerNorm layer_norm;
    private readonly Dropout dropout;

    public T5LayerSelfAttention(TransformerConfig config, bool hasRelativeAttentionBias) : base(nameof(T5LayerSelfAttention))
    {
        SelfAttention = new T5Attention(config, hasRelativeAttentionBias);
        layer_norm = new T5LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    public Embedding? RelativeAttentionBias => SelfAttention.RelativeAttentionBias;

    public override Tensor forward(Tensor hidden, Tensor? bias)
    {
        var normed = layer_norm.call(hidden);
        return hidden + dropout.call(SelfAttention.call(normed, normed, bias));
    }
}

/// <summary>x + dropout(EncDecAttention(layer_norm(x), encoder)), as T5LayerCrossAttention (no position bias).</summary>
internal sealed class T5LayerCrossAttention : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly T5Attention EncDecAttention;
    private readonly T5LayerNorm layer_norm;
    private readonly Dropout dropout;

    public T5LayerCrossAttention(TransformerConfig config) : base(nameof(T5LayerCrossAttention))
    {
        EncDecAttention = new T5Attention(config, hasRelativeAttentionBias: false);
        layer_norm = new T5LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor encoderHidden, Tensor? encoderMask) =>
        hidden + dropout.call(EncDecAttention.call(layer_norm.call(hidden), encoderHidden, encoderMask));
}

/// <summary>wo(dropout(act(wi x))), as T5DenseActDense (T5 v1.0: relu).</summary>
internal sealed class T5DenseActDense : nn.Module<Tensor, Tensor>
{
    private readonly Linear wi;
    private readonly Linear wo;
    private readonly Dropout dropout;
    private readonly Activation activation;

    public T5DenseActDense(TransformerConfig config) : base(nameof(T5DenseActDense))
    {
        wi = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        wo = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        dropout = nn.Dropout(config.HiddenDropout);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) => wo.call(dropout.call(Layers.Activate(wi.call(hidden), activation)));
}

/// <summary>wo(dropout(act(wi_0 x) · wi_1 x)), as T5DenseGatedActDense (T5 v1.1, flan-t5: gelu_new on the gate).</summary>
internal sealed class T5DenseGatedActDense : nn.Module<Tensor, Tensor>
{
    private readonly Linear wi_0;
    private readonly Linear wi_1;
    private readonly Linear wo;
    private readonly Dropout dropout;
    private readonly Activation activation;

    public T5DenseGatedActDense(TransformerConfig config) : base(nameof(T5DenseGatedActDense))
    {
        wi_0 = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        wi_1 = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        wo = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        dropout = nn.Dropout(config.HiddenDropout);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) =>
        wo.call(dropout.call(Layers.Activate(wi_0.call(hidden), activation) * wi_1.call(hidden)));
}

/// <summary>x + dropout(DenseReluDense(layer_norm(x))), as T5LayerFF.</summary>
internal sealed class T5LayerFF : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> DenseReluDense;
    private readonly T5LayerNorm layer_norm;
    private readonly Dropout dropout;

    public T5LayerFF(TransformerConfig config) : base(nameof(T5LayerFF))
    {
        DenseReluDense = config.GatedFeedForward ? new T5DenseGatedActDense(config) : new T5DenseActDense(config);
        layer_norm = new T5LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) => hidden + dropout.call(DenseReluDense.call(layer_norm.call(hidden)));
}

/// <summary>
/// One pre-norm block, as T5Block: <c>layer.0</c> self-attention, then (decoder) <c>layer.1</c> cross-attention, then
/// the feed-forward.
/// </summary>
internal sealed class T5Block : nn.Module<Tensor, Tensor?, Tensor?, Tensor?, Tensor>
{
    private readonly ModuleList<nn.Module> layer;
    private readonly T5LayerSelfAttention selfAttention;
    private readonly T5LayerCrossAttention? crossAttention;
    private readonly T5LayerFF feedForward;

    public T5Block(TransformerConfig config, bool isDecoder, bool hasRelativeAttentionBias) : base(nameof(T5Block))
    {
        var self = new T5LayerSelfAttention(config, hasRelativeAttentionBias);
        var cross = isDecoder ? new T5LayerCrossAttention(config) : null;
        var feed = new T5LayerFF(config);
        layer = cross is null ? nn.ModuleList<nn.Module>(self, feed) : nn.ModuleList<nn.Module>(self, cross, feed);
        RegisterComponents();

        // Typed handles on layer's entries, assigned after registration so that only "layer.N" names the weights.
        selfAttention = self;
        crossAttention = cross;
        feedForward = feed;
    }

    public Embedding? RelativeAttentionBias => selfAttention.RelativeAttentionBias;

    /// <summary>The block.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="bias">Self-attention position bias with its masks (B or 1, nh, T, T).</param>
    /// <param name="encoderHidden">The encoder's output (decoder blocks), else null.</param>
    /// <param name="encoderMask">Additive mask of padded encoder positions (B, 1, 1, S), or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? bias, Tensor? encoderHidden, Tensor? encoderMask)
    {
        hidden = selfAttention.call(hidden, bias);
        if (crossAttention is not null)
        {
            hidden = crossAttention.call(hidden, encoderHidden!, encoderMask);
        }

        return feedForward.call(hidden);
    }
}

/// <summary>
/// A stack of blocks over the shared token table (not stored again as <c>embed_tokens</c>), with a final RMSNorm, as
/// T5Stack. The position bias is computed once from block 0's table and added in every block.
/// </summary>
internal sealed class T5Stack : nn.Module<Tensor, Tensor, Tensor?, Tensor>
{
    private readonly ModuleList<T5Block> block;
    private readonly T5LayerNorm final_layer_norm;
    private readonly Dropout dropout;
    private readonly Embedding embedTokens;
    private readonly bool isDecoder;
    private readonly int buckets;
    private readonly int maxDistance;

    public T5Stack(TransformerConfig config, Embedding shared, bool isDecoder) : base(nameof(T5Stack))
    {
        var count = isDecoder ? config.DecoderLayers : config.NumLayers;
        block = nn.ModuleList([.. Enumerable.Range(0, count).Select(i => new T5Block(config, isDecoder, hasRelativeAttentionBias: i == 0))]);
        final_layer_norm = new T5LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
        embedTokens = shared;
        this.isDecoder = isDecoder;
        buckets = config.RelativeAttentionNumBuckets;
        maxDistance = config.RelativeAttentionMaxDistance;
    }

    /// <summary>The stack's last hidden state.</summary>
    /// <param name="ids">Input ids (encoder) or decoder input ids (decoder): (B, T).</param>
    /// <param name="attentionMask">The encoder inputs' mask (B, S): the encoder's own padding, or what cross-attention skips.</param>
    /// <param name="encoderHidden">The encoder's output (decoder), or null (encoder).</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor ids, Tensor attentionMask, Tensor? encoderHidden)
    {
        var hidden = dropout.call(embedTokens.call(ids));
        var length = ids.shape[1];
        var bias = T5RelativePositions.Bias(block[0].RelativeAttentionBias!, length, length, bidirectional: !isDecoder, buckets, maxDistance).to(hidden.dtype);
        Tensor? encoderMask = null;
        if (isDecoder)
        {
            // No padding mask for the decoder's own inputs, as HuggingFace without decoder_attention_mask: causal only.
            var future = ones(length, length, ScalarType.Bool, device: ids.device).triu(1);   // (U, U): key after query
            bias = bias.masked_fill(future, MinValue(hidden.dtype));
            encoderMask = Layers.EncoderAttentionMask(attentionMask, hidden.dtype);
        }
        else if (Layers.EncoderAttentionMask(attentionMask, hidden.dtype) is { } padding)
        {
            bias = bias + padding;                                                            // (B, nh, T, T)
        }

        foreach (var b in block)
        {
            hidden = b.call(hidden, bias, encoderHidden, encoderMask);
        }

        return dropout.call(final_layer_norm.call(hidden));
    }

    private static Scalar MinValue(ScalarType dtype) => dtype == ScalarType.BFloat16 ? -3.3895313892515355e38 : float.MinValue;
}

/// <summary>
/// The shared table, the encoder, the decoder and the LM head, as T5ForConditionalGeneration. A tied head
/// (<c>tie_word_embeddings</c>, T5 v1.0) multiplies the decoder output by d_model^-0.5 before the shared table; an
/// untied one (<c>lm_head</c>, T5 v1.1 and flan-t5) does not rescale.
/// </summary>
internal sealed class T5ForConditionalGeneration : ConditionalGenerationModel
{
    private readonly Embedding shared;
    private readonly T5Stack encoder;
    private readonly T5Stack decoder;
    private readonly Linear? lm_head;
    private readonly Parameter sharedWeight;

    public T5ForConditionalGeneration(TransformerConfig config) : base(nameof(T5ForConditionalGeneration), config)
    {
        shared = nn.Embedding(config.VocabSize, config.HiddenSize);
        encoder = new T5Stack(config, shared, isDecoder: false);
        decoder = new T5Stack(config, shared, isDecoder: true);
        if (!config.TieWordEmbeddings)
        {
            lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        }

        RegisterComponents();
        InitializeWeights(config);
        sharedWeight = shared.weight!;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => [];

    /// <inheritdoc/>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights => Config.TieWordEmbeddings
        ? [("encoder.embed_tokens.weight", "shared.weight"), ("decoder.embed_tokens.weight", "shared.weight"), ("lm_head.weight", "shared.weight")]
        : [("encoder.embed_tokens.weight", "shared.weight"), ("decoder.embed_tokens.weight", "shared.weight")];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) => encoder.call(inputIds, attentionMask, null);

    /// <inheritdoc/>
    public override Tensor DecoderHiddenStates(Tensor decoderInputIds, Tensor encoderHidden, Tensor attentionMask) =>
        decoder.call(decoderInputIds, attentionMask, encoderHidden);

    /// <inheritdoc/>
    public override Tensor PredictTokens(Tensor hidden) => lm_head is not null
        ? lm_head.call(hidden)
        : nn.functional.linear(hidden * Math.Pow(Config.HiddenSize, -0.5), sharedWeight);

    /// <summary>
    /// T5PreTrainedModel._init_weights, scaled by <c>initializer_factor</c> f: embeddings and the untied head normal(0, f),
    /// q normal(0, f·(d_model·d_kv)^-½), k/v and the relative bias normal(0, f·d_model^-½), o normal(0, f·(nh·d_kv)^-½),
    /// wi* normal(0, f·d_model^-½), wo normal(0, f·d_ff^-½), RMSNorm weights f.
    /// </summary>
    private void InitializeWeights(TransformerConfig config)
    {
        var f = config.InitializerRange;
        double dModel = config.HiddenSize, dKv = config.HeadDim, inner = config.NumHeads * config.HeadDim, dFf = config.IntermediateSize;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (name, parameter) in named_parameters())
        {
            var std = name switch
            {
                "shared.weight" or "lm_head.weight" => f,
                _ when name.EndsWith(".q.weight", StringComparison.Ordinal) => f * Math.Pow(dModel * dKv, -0.5),
                _ when name.EndsWith(".k.weight", StringComparison.Ordinal) || name.EndsWith(".v.weight", StringComparison.Ordinal)
                    || name.EndsWith("relative_attention_bias.weight", StringComparison.Ordinal) || name.Contains(".wi", StringComparison.Ordinal) => f * Math.Pow(dModel, -0.5),
                _ when name.EndsWith(".o.weight", StringComparison.Ordinal) => f * Math.Pow(inner, -0.5),
                _ when name.EndsWith(".wo.weight", StringComparison.Ordinal) => f * Math.Pow(dFf, -0.5),
                _ => double.NaN,
            };
            if (double.IsNaN(std))
            {
                parameter.fill_(f); // the RMSNorm gains
            }
            else
            {
                nn.init.normal_(parameter, 0, std);
            }
        }
    }

    /// <summary>Releases this handle on the shared table (the embedding keeps its own).</summary>
    /// <param name="disposing">Whether managed resources are released.</param>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            sharedWeight.Dispose();
        }

        base.Dispose(disposing);
    }
}
