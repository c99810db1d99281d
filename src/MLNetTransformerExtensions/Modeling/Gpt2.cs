// Mirrors HuggingFace transformers' models/gpt2/modeling_gpt2.py.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>Causal self-attention with packed c_attn and c_proj (Conv1D), as GPT2Attention.</summary>
internal sealed class Gpt2Attention : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly Conv1D c_attn;
    private readonly Conv1D c_proj;
    private readonly Dropout resid_dropout;
    private readonly int heads;
    private readonly int headDim;
    private readonly double attentionDropout;
    private readonly double scale;

    /// <summary>Creates the projections.</summary>
    /// <param name="config">A GPT-2 config.</param>
    /// <param name="layerIndex">The layer's index (for <c>scale_attn_by_inverse_layer_idx</c>).</param>
    public Gpt2Attention(TransformerConfig config, int layerIndex) : base(nameof(Gpt2Attention))
    {
        heads = config.NumHeads;
        headDim = config.HeadDim;
        attentionDropout = config.AttentionDropout;
        // The fused kernel divides by √hs; undo or extend that to honour the config's scaling flags.
        scale = (config.ScaleAttentionWeights ? 1.0 : Math.Sqrt(headDim))
            / (config.ScaleAttentionByInverseLayerIndex ? layerIndex + 1 : 1);
        c_attn = new Conv1D(config.HiddenSize, 3 * config.HiddenSize);
        c_proj = new Conv1D(config.HiddenSize, config.HiddenSize);
        resid_dropout = nn.Dropout(config.HiddenDropout);
        RegisterComponents();
    }

    /// <summary>Attends to the current and earlier tokens.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive causal + padding mask (B, 1, T, T), or null when nothing is padded.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        var (batch, length, width) = (hidden.shape[0], hidden.shape[1], hidden.shape[2]);
        // (B, T, 3H) -> 3 × (B, T, H) -> (B, nh, T, hs)
        var qkv = c_attn.call(hidden).split(width, dim: 2);
        Tensor Split(Tensor x) => x.view(batch, length, heads, headDim).transpose(1, 2);
        var context = Layers.Attend(Split(qkv[0]), Split(qkv[1]), Split(qkv[2]),
            mask, training ? attentionDropout : 0.0, causal: true, scale);
        // (B, nh, T, hs) -> (B, T, H)
        return resid_dropout.call(c_proj.call(context.transpose(1, 2).reshape(batch, length, width)));
    }
}

/// <summary>c_fc → activation → c_proj → dropout, as GPT2MLP.</summary>
internal sealed class Gpt2Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Conv1D c_fc;
    private readonly Conv1D c_proj;
    private readonly Dropout dropout;
    private readonly Activation activation;

    /// <summary>Creates the block.</summary>
    /// <param name="config">A GPT-2 config.</param>
    public Gpt2Mlp(TransformerConfig config) : base(nameof(Gpt2Mlp))
    {
        c_fc = new Conv1D(config.HiddenSize, config.IntermediateSize);
        c_proj = new Conv1D(config.IntermediateSize, config.HiddenSize);
        dropout = nn.Dropout(config.HiddenDropout);
        activation = config.HiddenAct;
        RegisterComponents();
    }

    /// <summary>The feed-forward branch.</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden) => dropout.call(c_proj.call(Layers.Activate(c_fc.call(hidden), activation)));
}

/// <summary>One pre-LN block, as GPT2Block.</summary>
internal sealed class Gpt2Block : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly LayerNorm ln_1;
    private readonly Gpt2Attention attn;
    private readonly LayerNorm ln_2;
    private readonly Gpt2Mlp mlp;

    /// <summary>Creates the block.</summary>
    /// <param name="config">A GPT-2 config.</param>
    /// <param name="layerIndex">The block's index.</param>
    public Gpt2Block(TransformerConfig config, int layerIndex) : base(nameof(Gpt2Block))
    {
        ln_1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        attn = new Gpt2Attention(config, layerIndex);
        ln_2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        mlp = new Gpt2Mlp(config);
        RegisterComponents();
    }

    /// <summary>x + attn(ln_1(x)), then + mlp(ln_2(·)).</summary>
    /// <param name="hidden">(B, T, H).</param>
    /// <param name="mask">Additive mask, or null.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor hidden, Tensor? mask)
    {
        hidden = hidden + attn.call(ln_1.call(hidden), mask);
        return hidden + mlp.call(ln_2.call(hidden));
    }
}

/// <summary>Token + learned position embeddings, the blocks and the final LayerNorm, as GPT2Model.</summary>
internal sealed class Gpt2Model : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding wte;
    private readonly Embedding wpe;
    private readonly Dropout drop;
    private readonly ModuleList<Gpt2Block> h;
    private readonly LayerNorm ln_f;

    /// <summary>Creates the body.</summary>
    /// <param name="config">A GPT-2 config.</param>
    public Gpt2Model(TransformerConfig config) : base(nameof(Gpt2Model))
    {
        wte = nn.Embedding(config.VocabSize, config.HiddenSize);
        wpe = nn.Embedding(config.MaxPositions, config.HiddenSize);
        drop = nn.Dropout(config.EmbeddingDropout);
        h = nn.ModuleList([.. Enumerable.Range(0, config.NumLayers).Select(i => new Gpt2Block(config, i))]);
        ln_f = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        RegisterComponents();
    }

    /// <summary>The token-embedding matrix (vocab, H), which the LM head shares.</summary>
    public Parameter TokenEmbeddings => wte.weight!;

    /// <summary>Final hidden states (after ln_f).</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="attentionMask">(B, T), 1 for real tokens; padding may be on either side.</param>
    /// <returns>(B, T, H).</returns>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        // Positions count real tokens only, so a left-padded row sees the positions of its unpadded self.
        var positions = attentionMask.cumsum(1).sub(1).clamp_min(0);
        var hidden = drop.call(wte.call(inputIds) + wpe.call(positions));
        var mask = Layers.DecoderAttentionMask(attentionMask, hidden.dtype);
        foreach (var block in h)
        {
            hidden = block.call(hidden, mask);
        }

        return ln_f.call(hidden);
    }

    /// <summary>
    /// Final hidden states for explicit positions and attention pattern: what lets several continuations of one prompt
    /// share a sequence (each attending to the prompt and to its own earlier tokens, at the positions it would have
    /// right after the prompt), so the prompt is computed once instead of once per continuation.
    /// </summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="positions">Position ids (B, T).</param>
    /// <param name="allowed">Whether query i may attend to key j (B, T, T); every row needs at least one true.</param>
    /// <returns>(B, T, H).</returns>
    public Tensor forward(Tensor inputIds, Tensor positions, Tensor allowed)
    {
        var hidden = drop.call(wte.call(inputIds) + wpe.call(positions));
        var mask = Layers.AdditiveMask(allowed.unsqueeze(1), hidden.dtype);   // (B, 1, T, T)
        foreach (var block in h)
        {
            hidden = block.call(hidden, mask);
        }

        return ln_f.call(hidden);
    }

    /// <summary>GPT-2's extra initialisation: residual projections scaled by 1/√(2·n_layer).</summary>
    /// <param name="config">The config.</param>
    public void ScaleResidualProjections(TransformerConfig config)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (name, parameter) in named_parameters())
        {
            if (name.EndsWith("c_proj.weight", StringComparison.Ordinal))
            {
                nn.init.normal_(parameter, 0, config.InitializerRange / Math.Sqrt(2.0 * config.NumLayers));
            }
        }
    }
}

/// <summary>Index of each row's last real token: the largest position whose mask is 1 (either padding side).</summary>
internal static class LastToken
{
    public static Tensor Positions(Tensor attentionMask) =>
        attentionMask.mul(arange(attentionMask.shape[1], dtype: ScalarType.Int64, device: attentionMask.device)).argmax(1);

    /// <summary>hidden[b, last(b)] for every row: (B, T, H) -> (B, H).</summary>
    public static Tensor Gather(Tensor hidden, Tensor attentionMask) =>
        hidden[arange(hidden.shape[0], dtype: ScalarType.Int64, device: hidden.device), Positions(attentionMask)];
}

/// <summary>A bias-free <c>score</c> on the last real token, as GPT2ForSequenceClassification.</summary>
internal sealed class Gpt2ForSequenceClassification : SequenceClassificationModel
{
    private readonly Gpt2Model transformer;
    private readonly Linear score;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A GPT-2 config.</param>
    public Gpt2ForSequenceClassification(TransformerConfig config) : base(nameof(Gpt2ForSequenceClassification), config)
    {
        transformer = new Gpt2Model(config);
        score = nn.Linear(config.HiddenSize, config.NumLabels, hasBias: false);
        RegisterComponents();
        Layers.InitializeWeights(this, config);
        transformer.ScaleResidualProjections(config);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => ["score."];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        transformer.call(inputIds, attentionMask);

    /// <inheritdoc/>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        score.call(LastToken.Gather(transformer.call(inputIds, attentionMask), attentionMask));
}

/// <summary>The body with the LM head tied to wte (no bias), as GPT2LMHeadModel.</summary>
internal sealed class Gpt2LMHeadModel : LanguageModel
{
    private readonly Gpt2Model transformer;

    /// <summary>Creates the model with HuggingFace's initialisation.</summary>
    /// <param name="config">A GPT-2 config.</param>
    public Gpt2LMHeadModel(TransformerConfig config) : base(nameof(Gpt2LMHeadModel), config)
    {
        transformer = new Gpt2Model(config);
        RegisterComponents();
        Layers.InitializeWeights(this, config);
        transformer.ScaleResidualProjections(config);
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadPrefixes => [];

    /// <inheritdoc/>
    public override IReadOnlyList<(string Tied, string Source)> TiedWeights => [("lm_head.weight", "transformer.wte.weight")];

    /// <inheritdoc/>
    public override Tensor HiddenStates(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds) =>
        transformer.call(inputIds, attentionMask);

    /// <inheritdoc/>
    public override Tensor PredictTokens(Tensor hidden) => nn.functional.linear(hidden, transformer.TokenEmbeddings);

    /// <summary>Final hidden states for explicit positions and attention pattern, for continuations that share a prompt (see <see cref="Gpt2Model.forward(Tensor, Tensor, Tensor)"/>).</summary>
    /// <param name="inputIds">(B, T).</param>
    /// <param name="positions">Position ids (B, T).</param>
    /// <param name="allowed">Whether query i may attend to key j (B, T, T).</param>
    /// <returns>(B, T, H).</returns>
    public Tensor TreeHiddenStates(Tensor inputIds, Tensor positions, Tensor allowed) => transformer.forward(inputIds, positions, allowed);
}
