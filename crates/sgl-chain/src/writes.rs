//! The transactions a [`Chain`] sends: the grid's (slashing, x402 settlement, payouts, escrow
//! streams), an operator's (stake, bond) and, on local chains, minting test tokens.

use alloy::primitives::{Address, B256, U256};

use crate::ChainError;
use crate::chain::{Authorization, Chain, Mined};
use crate::deploy::mined;

/// Sends `$call` from `$chain`'s signer, one send at a time, and waits until it is mined.
macro_rules! send {
    ($chain:expr, $call:expr) => {{
        let _one_at_a_time = $chain.sends.lock().await;
        Mined::from(&mined($call.send().await?).await?)
    }};
}

impl Chain {
    /// Lets `spender` move `amount` of `token` from this signer, when it may not already.
    async fn allow(&self, stake_token: bool, spender: Address, amount: U256) -> Result<(), ChainError> {
        let token = if stake_token { &self.stake_token } else { &self.usdc };
        if token.allowance(self.address(), spender).call().await? < amount {
            let _approved = send!(self, token.approve(spender, U256::MAX));
        }
        Ok(())
    }

    /// Slashes `amount` of `operator`'s stake (active first, then unstaking) to the treasury,
    /// with `evidence` (the hash of the grid's evidence record) in the event.
    pub async fn slash_stake(&self, operator: Address, amount: U256, evidence: B256) -> Result<Mined, ChainError> {
        Ok(send!(self, self.staking.slash(operator, amount, evidence)))
    }

    /// Slashes `amount` of `provider`'s bond to the treasury, with `evidence`.
    pub async fn slash_bond(&self, provider: Address, amount: U256, evidence: B256) -> Result<Mined, ChainError> {
        Ok(send!(self, self.registry.slash(provider, amount, evidence)))
    }

    /// Sets `provider`'s reputation in the registry.
    pub async fn set_reputation(&self, provider: Address, score: u32) -> Result<Mined, ChainError> {
        Ok(send!(self, self.registry.setReputation(provider, score)))
    }

    /// Moves a signed x402 payment on chain: `transferWithAuthorization` on the payment token,
    /// paid for in gas by this signer.
    pub async fn transfer_with_authorization(&self, auth: &Authorization) -> Result<Mined, ChainError> {
        let v = 27 + u8::from(auth.signature.v());
        let (r, s) = (B256::from(auth.signature.r()), B256::from(auth.signature.s()));
        let call = self.usdc.transferWithAuthorization(
            auth.from,
            auth.to,
            auth.value,
            auth.valid_after,
            auth.valid_before,
            auth.nonce,
            v,
            r,
            s,
        );
        Ok(send!(self, call))
    }

    /// Pays `payouts` in USDC from this signer in one transaction through `Escrow.payBatch`,
    /// once per `batch_id` (a replay reverts).
    pub async fn pay_batch(&self, batch_id: B256, payouts: &[(Address, U256)]) -> Result<Mined, ChainError> {
        let total = payouts.iter().fold(U256::ZERO, |sum, (_, amount)| sum.saturating_add(*amount));
        self.allow(false, self.contracts().escrow, total).await?;
        let (to, amounts): (Vec<Address>, Vec<U256>) = payouts.iter().copied().unzip();
        Ok(send!(self, self.escrow.payBatch(batch_id, to, amounts)))
    }

    /// Opens a stream paying `provider` `rate_per_second` from a `deposit` of this signer's
    /// USDC. Returns the stream's id.
    pub async fn open_stream(
        &self,
        provider: Address,
        deposit: U256,
        rate_per_second: U256,
    ) -> Result<(U256, Mined), ChainError> {
        self.allow(false, self.contracts().escrow, deposit).await?;
        let _one_at_a_time = self.sends.lock().await;
        let receipt = mined(self.escrow.openStream(provider, deposit, rate_per_second).send().await?).await?;
        let id = receipt
            .decoded_log::<crate::bindings::Escrow::StreamOpened>()
            .map(|log| log.data.id)
            .ok_or(ChainError::Reverted(receipt.transaction_hash))?;
        Ok((id, Mined::from(&receipt)))
    }

    /// Pays the provider what stream `id` has streamed (less the 1 % fee).
    pub async fn withdraw_stream(&self, id: U256) -> Result<Mined, ChainError> {
        Ok(send!(self, self.escrow.withdraw(id)))
    }

    /// Closes stream `id`: pays what streamed, refunds the rest to the payer.
    pub async fn close_stream(&self, id: U256) -> Result<Mined, ChainError> {
        Ok(send!(self, self.escrow.close(id)))
    }

    /// Stakes `amount` of this signer's stake tokens (approving `Staking` first if needed).
    pub async fn stake(&self, amount: U256) -> Result<Mined, ChainError> {
        self.allow(true, self.contracts().staking, amount).await?;
        Ok(send!(self, self.staking.stake(amount)))
    }

    /// Starts unstaking `amount`: withdrawable after seven days, slashable until then.
    pub async fn request_unstake(&self, amount: U256) -> Result<Mined, ChainError> {
        Ok(send!(self, self.staking.requestUnstake(amount)))
    }

    /// Takes out unstaked tokens whose seven days have passed.
    pub async fn withdraw_stake(&self) -> Result<Mined, ChainError> {
        Ok(send!(self, self.staking.withdraw()))
    }

    /// Registers this signer as a provider with `bond` stake tokens (approving first).
    pub async fn register(&self, bond: U256, metadata: B256) -> Result<Mined, ChainError> {
        self.allow(true, self.contracts().registry, bond).await?;
        Ok(send!(self, self.registry.register(bond, metadata)))
    }

    /// Mints `amount` USDC to `to`: test tokens on a local chain only.
    pub async fn mint_usdc(&self, to: Address, amount: U256) -> Result<Mined, ChainError> {
        Ok(send!(self, self.usdc.mint(to, amount)))
    }

    /// Mints `amount` stake tokens to `to`: test tokens on a local chain only.
    pub async fn mint_stake_token(&self, to: Address, amount: U256) -> Result<Mined, ChainError> {
        Ok(send!(self, self.stake_token.mint(to, amount)))
    }

    /// Sends `wei` of the chain's coin to `to` (gas money for a new local account).
    pub async fn send_coin(&self, to: Address, wei: U256) -> Result<Mined, ChainError> {
        use alloy::network::TransactionBuilder as _;
        use alloy::providers::Provider as _;
        let tx = alloy::rpc::types::TransactionRequest::default().with_to(to).with_value(wei);
        let _one_at_a_time = self.sends.lock().await;
        Ok(Mined::from(&mined(self.provider().send_transaction(tx).await?).await?))
    }
}
